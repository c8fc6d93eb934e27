package main

import (
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

const (
	clockMonotonic  = 1     // CLOCK_MONOTONIC, the clock of Go's monotonic readings too
	tfdTimerAbstime = 1     // TFD_TIMER_ABSTIME
	timerEvent      = -1    // the epoll event of the timerfd; connections are their index
	readChunk       = 16384 // bytes a connection's buffer grows by
)

// conn is one keep-alive connection, closed (fd -1) after an error or a "Connection: close"
// and dialled again when it next carries a request.
type conn struct {
	index int
	fd    int
	k     int   // the request in flight, -1 when idle
	sent  int64 // its send time, ns after t0
	buf   []byte
	n     int
}

// loop is the driver: one thread waits in epoll for the timerfd (the next due time) and for
// answers, sends every due request to an idle connection, and records each answer.
type loop struct {
	requests [][]byte
	results  []result
	rate     int64
	timeout  int64
	drain    int64

	sockaddr syscall.Sockaddr
	family   int
	conns    []*conn
	idle     []*conn // FIFO, so load spreads over every connection (and every server process)
	idleHead int
	idleLen  int
	epfd     int
	tfd      int
	armed    int64

	t0        time.Time
	t0Raw     int64 // CLOCK_MONOTONIC at t0, for the timerfd's absolute times
	scheduled int   // requests due so far
	next      int   // the next request to send
	inFlight  int
}

// due is request k's scheduled time after t0, to the nanosecond.
func (l *loop) due(k int) int64 { return int64(k+1) * int64(time.Second) / l.rate }

func (l *loop) now() int64 { return int64(time.Since(l.t0)) }

// The loop's system calls go straight to the kernel (RawSyscall): through syscall.Syscall, Go's
// runtime would hand the thread's P to another thread whenever epoll_wait blocks (futex
// wake-ups and a busy sysmon, most of the driver's CPU). Nothing else runs in this process.

func epollWait(epfd int, events []syscall.EpollEvent, msec int) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	return int(n), errno
}

func read(fd int, buf []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	return int(n), errno
}

func write(fd int, buf []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	return int(n), errno
}

func rawMonotonic() int64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// open resolves the address and dials every connection, so no request's latency holds a
// handshake, and sets up epoll and the timerfd.
func (l *loop) open(addr string, connections int) error {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return err
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: tcp.Port}
		copy(sa.Addr[:], ip4)
		l.sockaddr, l.family = sa, syscall.AF_INET
	} else {
		sa := &syscall.SockaddrInet6{Port: tcp.Port}
		copy(sa.Addr[:], tcp.IP.To16())
		l.sockaddr, l.family = sa, syscall.AF_INET6
	}
	if l.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return err
	}
	tfd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return errno
	}
	l.tfd = int(tfd)
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, l.tfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: timerEvent}); err != nil {
		return err
	}
	l.idle = make([]*conn, connections)
	for i := 0; i < connections; i++ {
		c := &conn{index: i, fd: -1, k: -1, buf: make([]byte, readChunk)}
		if err := l.dial(c); err != nil {
			return fmt.Errorf("cannot connect to %s: %w", addr, err)
		}
		l.conns = append(l.conns, c)
		l.pushIdle(c)
	}
	return nil
}

func (l *loop) dial(c *conn) error {
	fd, err := syscall.Socket(l.family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// A blocking connect, bounded by SO_SNDTIMEO (Linux applies it to connect).
	tv := syscall.NsecToTimeval(l.timeout)
	if err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err == nil {
		err = syscall.Connect(fd, l.sockaddr)
	}
	if err == nil {
		err = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	if err == nil {
		err = syscall.SetNonblock(fd, true)
	}
	if err == nil {
		err = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.index)})
	}
	if err != nil {
		syscall.Close(fd)
		return err
	}
	c.fd, c.n = fd, 0
	return nil
}

func (l *loop) close(c *conn) {
	if c.fd >= 0 {
		syscall.Close(c.fd) // also leaves the epoll set
		c.fd = -1
	}
	c.n = 0
}

func (l *loop) pushIdle(c *conn) {
	l.idle[(l.idleHead+l.idleLen)%len(l.idle)] = c
	l.idleLen++
}

func (l *loop) popIdle() *conn {
	c := l.idle[l.idleHead]
	l.idleHead = (l.idleHead + 1) % len(l.idle)
	l.idleLen--
	return c
}

// send puts request k on connection c (dialling it first when closed).
func (l *loop) send(c *conn, k int) {
	c.k, c.sent = k, l.now()
	l.inFlight++
	if c.fd < 0 {
		if err := l.dial(c); err != nil {
			l.finish(c, 0, false)
			return
		}
	}
	request := l.requests[k%len(l.requests)]
	// An idle keep-alive connection's send buffer is empty: a request of a few hundred bytes is
	// written whole, or the connection is broken.
	if n, errno := write(c.fd, request); errno != 0 || n != len(request) {
		l.finish(c, 0, false)
	}
}

// finish records the answer (status 0: none) of c's request and makes c idle again.
func (l *loop) finish(c *conn, status int, keepAlive bool) {
	now := l.now()
	l.results[c.k] = result{sent: c.sent, latency: now - c.sent, status: int32(status)}
	c.k = -1
	l.inFlight--
	if !keepAlive {
		l.close(c)
	}
	l.pushIdle(c)
}

// readable reads what arrived on c and finishes its request once the answer is whole.
func (l *loop) readable(c *conn) {
	if c.fd < 0 {
		return
	}
	if c.n == len(c.buf) {
		c.buf = append(c.buf, make([]byte, readChunk)...)
	}
	n, errno := read(c.fd, c.buf[c.n:])
	if errno == syscall.EAGAIN || errno == syscall.EINTR {
		return
	}
	if c.k < 0 { // an idle connection: the server closed it (or spoke out of turn)
		l.close(c)
		return
	}
	if errno != 0 {
		l.finish(c, 0, false)
		return
	}
	c.n += n
	consumed, status, keepAlive, complete, perr := parseResponse(c.buf[:c.n], n == 0)
	switch {
	case perr != nil:
		l.finish(c, 0, false)
	case complete:
		// Bytes past the answer were never asked for: the connection is not to be trusted.
		l.finish(c, status, keepAlive && consumed == c.n && n > 0)
		c.n = 0
	case n == 0:
		l.finish(c, 0, false)
	}
}

// arm sets the timerfd to fire at `due` (ns after t0), unless it already will.
func (l *loop) arm(due int64) error {
	if due == l.armed {
		return nil
	}
	at := l.t0Raw + due
	spec := [2]syscall.Timespec{{}, syscall.NsecToTimespec(at)} // it_interval 0: one shot
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(l.tfd), tfdTimerAbstime,
		uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		return errno
	}
	l.armed = due
	return nil
}

func (l *loop) run() error {
	count := len(l.results)
	for i := range l.results {
		l.results[i].status = -1
	}
	events := make([]syscall.EpollEvent, 256)
	var expirations [8]byte
	l.t0 = time.Now()
	l.t0Raw = rawMonotonic()
	l.armed = -1
	lastDue := l.due(count - 1)
	for {
		now := l.now()
		for l.scheduled < count && l.due(l.scheduled) <= now {
			l.scheduled++
		}
		if now > lastDue+l.drain {
			l.next = count // the rest stay "never sent"
		}
		for l.next < l.scheduled && l.idleLen > 0 {
			l.send(l.popIdle(), l.next)
			l.next++
		}
		for _, c := range l.conns {
			if c.k >= 0 && now-c.sent > l.timeout {
				l.finish(c, 0, false)
			}
		}
		if l.next >= count && l.inFlight == 0 {
			return nil
		}
		if l.scheduled < count {
			if err := l.arm(l.due(l.scheduled)); err != nil {
				return err
			}
		}
		// The timerfd wakes the loop for the next due request; answers wake it too. The wait is
		// bounded so timeouts and the drain's end are noticed within 10 ms.
		n, errno := epollWait(l.epfd, events, 10)
		if errno == syscall.EINTR { // the runtime's preemption signal
			continue
		}
		if errno != 0 {
			return errno
		}
		for _, e := range events[:n] {
			if e.Fd == timerEvent {
				read(l.tfd, expirations[:])
				l.armed = -1
				continue
			}
			l.readable(l.conns[e.Fd])
		}
	}
}
