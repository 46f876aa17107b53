package plugins

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

const (
	// captureHead and captureTail bound what an instance keeps of one call's guest output (stdout and
	// stderr together) for error messages: the first captureHead bytes, where runtimes print the cause
	// ("panic: ...", "fatal error: ..."), and the last captureTail bytes.
	captureHead = 2 << 10
	captureTail = 2 << 10
	// stderrForwardLimit is how much stderr one call may forward to the writer given to WithStderr.
	stderrForwardLimit = 4 << 10
)

// captureWriter keeps the head and tail of what one instance's guest writes during a call, and forwards a
// bounded amount of its stderr. It is used by one goroutine at a time, like its instance.
type captureWriter struct {
	head      []byte
	tailBuf   []byte // ring of the last captureTail bytes written after the head filled up
	tailStart int    // index of the oldest byte in tailBuf once it is full
	total     int    // bytes written after the head filled up
	forward   io.Writer
	forwarded int
}

func newCaptureWriter(forward io.Writer) *captureWriter {
	return &captureWriter{forward: forward}
}

// reset starts a new call.
func (c *captureWriter) reset() {
	c.head = c.head[:0]
	c.tailBuf = c.tailBuf[:0]
	c.tailStart = 0
	c.total = 0
	c.forwarded = 0
}

func (c *captureWriter) keep(p []byte) {
	if n := min(len(p), captureHead-len(c.head)); n > 0 {
		c.head = append(c.head, p[:n]...)
		p = p[n:]
	}
	c.total += len(p)
	if len(p) >= captureTail {
		c.tailBuf = append(c.tailBuf[:0], p[len(p)-captureTail:]...)
		c.tailStart = 0
		return
	}
	for _, b := range p {
		if len(c.tailBuf) < captureTail {
			c.tailBuf = append(c.tailBuf, b)
			continue
		}
		c.tailBuf[c.tailStart] = b
		c.tailStart = (c.tailStart + 1) % captureTail
	}
}

// Write receives the guest's stderr.
func (c *captureWriter) Write(p []byte) (int, error) {
	c.keep(p)
	if c.forward != nil && c.forwarded < stderrForwardLimit {
		chunk := p[:min(len(p), stderrForwardLimit-c.forwarded)]
		c.forwarded += len(chunk)
		_, _ = c.forward.Write(chunk)
	}
	return len(p), nil
}

// stdout returns the writer for the guest's stdout, which is kept but not forwarded.
func (c *captureWriter) stdout() io.Writer { return stdoutWriter{c} }

type stdoutWriter struct{ c *captureWriter }

func (w stdoutWriter) Write(p []byte) (int, error) {
	w.c.keep(p)
	return len(p), nil
}

// text returns what the guest wrote during the current call: all of it, or its head and tail with the
// number of bytes left out between them.
func (c *captureWriter) text() string {
	tail := append(append([]byte(nil), c.tailBuf[c.tailStart:]...), c.tailBuf[:c.tailStart]...)
	if skipped := c.total - len(tail); skipped > 0 {
		return string(c.head) + "\n[... " + strconv.Itoa(skipped) + " bytes ...]\n" + string(tail)
	}
	return string(c.head) + string(tail)
}

// checkOutput checks that an output is one JSON object. The schema is checked by the caller.
func checkOutput(out []byte) error {
	trimmed := bytes.TrimLeft(out, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("output is not a JSON object")
	}
	if !json.Valid(out) {
		return errors.New("output is not valid JSON")
	}
	return nil
}
