package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
)

type target struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header"`
}

// readTargets renders every target once as the bytes of its request, so the loop only writes.
func readTargets(path string) (addr string, requests [][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; scanner.Scan(); line++ {
		if len(bytes.TrimSpace(scanner.Bytes())) == 0 {
			continue
		}
		var t target
		if err := json.Unmarshal(scanner.Bytes(), &t); err != nil {
			return "", nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		u, err := url.Parse(t.URL)
		if err != nil {
			return "", nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		if (t.Method != "" && t.Method != "GET") || u.Scheme != "http" {
			return "", nil, fmt.Errorf("%s line %d: only plain-HTTP GET targets are supported", path, line)
		}
		if addr == "" {
			addr = u.Host
		} else if u.Host != addr {
			return "", nil, fmt.Errorf("%s line %d: every target must name one host (%s, not %s)", path, line, addr, u.Host)
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: wallet-lake-open-loop\r\n", u.RequestURI(), u.Host)
		for name, values := range t.Header {
			for _, v := range values {
				fmt.Fprintf(&b, "%s: %s\r\n", name, v)
			}
		}
		b.WriteString("\r\n")
		requests = append(requests, b.Bytes())
	}
	if err := scanner.Err(); err != nil {
		return "", nil, err
	}
	if len(requests) == 0 {
		return "", nil, fmt.Errorf("%s holds no targets", path)
	}
	return addr, requests, nil
}
