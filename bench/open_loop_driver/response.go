package main

import (
	"bytes"
	"errors"
	"strconv"
)

var errMalformed = errors.New("malformed HTTP response")

// parseResponse reads one HTTP/1.1 response from the start of buf. complete is false while
// more bytes are needed; a body delimited by the server's close (neither Content-Length nor
// chunks) is complete only at EOF (atEOF). consumed is the response's length in buf.
func parseResponse(buf []byte, atEOF bool) (consumed int, status int, keepAlive bool, complete bool, err error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if atEOF {
			return 0, 0, false, false, errMalformed
		}
		return 0, 0, false, false, nil
	}
	head := buf[:end+2]
	bodyStart := end + 4
	eol := bytes.IndexByte(head, '\n')
	line := head[:eol]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, false, false, errMalformed
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, 0, false, false, errMalformed
	}
	keepAlive = line[7] == '1' // HTTP/1.1 keeps the connection unless told otherwise
	length, chunked := int64(-1), false
	for rest := head[eol+1:]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		header := rest[:i]
		rest = rest[i+1:]
		colon := bytes.IndexByte(header, ':')
		if colon < 0 {
			continue
		}
		name, value := bytes.TrimSpace(header[:colon]), bytes.ToLower(bytes.TrimSpace(header[colon+1:]))
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, 0, false, false, errMalformed
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.Contains(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			if bytes.Contains(value, []byte("close")) {
				keepAlive = false
			} else if bytes.Contains(value, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		return bodyStart, status, keepAlive, true, nil
	case chunked:
		n, done, err := chunkedLength(buf[bodyStart:])
		if err != nil || (!done && atEOF) {
			return 0, 0, false, false, errMalformed
		}
		return bodyStart + n, status, keepAlive, done, nil
	case length >= 0:
		if int64(len(buf)-bodyStart) < length {
			if atEOF {
				return 0, 0, false, false, errMalformed
			}
			return 0, 0, false, false, nil
		}
		return bodyStart + int(length), status, keepAlive, true, nil
	default:
		return len(buf), status, false, atEOF, nil
	}
}

// chunkedLength is the length of a whole chunked body at the start of buf (chunks, the last
// chunk, trailers, the final empty line), or done false while more bytes are needed.
func chunkedLength(buf []byte) (n int, done bool, err error) {
	for {
		eol := bytes.Index(buf[n:], []byte("\r\n"))
		if eol < 0 {
			return 0, false, nil
		}
		sizeField := buf[n : n+eol]
		if i := bytes.IndexByte(sizeField, ';'); i >= 0 {
			sizeField = sizeField[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeField)), 16, 64)
		if err != nil || size < 0 {
			return 0, false, errMalformed
		}
		n += eol + 2
		if size == 0 { // trailers, each "name: value\r\n", then an empty line
			for {
				eol = bytes.Index(buf[n:], []byte("\r\n"))
				if eol < 0 {
					return 0, false, nil
				}
				n += eol + 2
				if eol == 0 {
					return n, true, nil
				}
			}
		}
		if int64(len(buf)-n) < size+2 {
			return 0, false, nil
		}
		n += int(size) + 2
	}
}
