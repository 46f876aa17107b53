// Package testredis runs throwaway redis-server processes for tests: each one a child process on a free
// loopback port, with persistence off and its files in a temporary directory, stopped when the test (or
// the test binary) ends. Tests that need Redis never skip: when redis-server is missing they fail and say
// how to install it.
//
// It owns nothing but those processes; it does not know the store's key layout.
package testredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InstallHint is the failure message when redis-server is not on PATH.
const InstallHint = "redis-server not found: install it (apt-get install -y redis-server); CI installs it in .ci/run"

const (
	// portAttempts bounds the retries when another process takes the chosen port first.
	portAttempts = 5
	// readyTimeout bounds how long a new server may take to answer PING. A cluster node also waits
	// about 2 s after getting its slots before it reports cluster_state:ok (Redis's writable delay).
	readyTimeout = 15 * time.Second
)

// Start starts a standalone redis-server for t and returns its URL (redis://127.0.0.1:PORT/0). The server
// is killed, and waited for, when t's cleanup runs. It calls t.Fatal if redis-server is missing or does
// not come up.
func Start(t testing.TB) (url string) {
	t.Helper()
	s, err := start(config{nextPort: freePort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s.URL()
}

// StartCluster starts a one-node Redis Cluster (cluster mode on, all 16384 slots on that node) for t and
// returns its address (127.0.0.1:PORT) for redis.ClusterOptions.Addrs. Like a real cluster it refuses
// multi-key commands whose keys are in different hash slots (CROSSSLOT). Cleanup as for Start.
func StartCluster(t testing.TB) (addr string) {
	t.Helper()
	s, err := start(config{cluster: true, nextPort: freePort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s.addr
}

// Main starts one standalone redis-server for a whole test binary, stores its URL in *url, runs m and
// stops the server. It returns the exit code for os.Exit, 1 if the server could not start:
//
//	var redisURL string
//
//	func TestMain(m *testing.M) { os.Exit(testredis.Main(m, &redisURL)) }
func Main(m *testing.M, url *string) int {
	s, err := start(config{nextPort: freePort})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testredis:", err)
		return 1
	}
	defer s.stop()
	*url = s.URL()
	return m.Run()
}

// config says what kind of server to start and where ports come from (tests of the retry replace it).
type config struct {
	cluster  bool
	node     bool // with cluster: a node without slots, to be joined into a multi-node cluster
	nextPort func() (int, error)
}

// server is one running redis-server.
type server struct {
	addr string
	dir  string
	bin  string   // redis-server, for a restart
	args []string // its arguments, for a restart
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when cmd.Wait returned
	once sync.Once
}

// URL returns the server's redis:// URL, database 0.
func (s *server) URL() string { return "redis://" + s.addr + "/0" }

func start(cfg config) (*server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	dir, err := os.MkdirTemp("", "testredis-")
	if err != nil {
		return nil, fmt.Errorf("testredis: make data directory: %w", err)
	}
	for attempt := 1; ; attempt++ {
		port, err := cfg.nextPort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("testredis: pick a port: %w", err)
		}
		mode := standalone
		switch {
		case cfg.cluster && cfg.node:
			mode = clusterNode
		case cfg.cluster:
			mode = singleNodeCluster
		}
		s, err := launch(bin, dir, port, mode)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port already in use")

// nodeMode says how launch starts a server.
type nodeMode int

const (
	// standalone is a plain redis-server.
	standalone nodeMode = iota
	// singleNodeCluster is cluster mode with every slot assigned to this one node.
	singleNodeCluster
	// clusterNode is cluster mode with no slots: a member-to-be of a multi-node cluster (cluster.go).
	clusterNode
)

// launch starts redis-server on port and waits until it serves (and, as a single-node cluster, owns
// every slot).
func launch(bin, dir string, port int, mode nodeMode) (*server, error) {
	cluster := mode != standalone
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", dir,
	}
	if cluster {
		args = append(args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
			"--cluster-announce-ip", "127.0.0.1")
	}
	if mode == clusterNode {
		// A short node timeout makes a replica take over within a few seconds of its primary's death.
		args = append(args, "--cluster-node-timeout", strconv.Itoa(int(nodeTimeout/time.Millisecond)),
			"--cluster-replica-validity-factor", "0")
	}
	s := &server{addr: addr, dir: dir, bin: bin, args: args, out: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	setParentDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testredis: start redis-server: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	err := s.waitReady(mode == singleNodeCluster)
	if err == nil {
		return s, nil
	}
	s.kill()
	out := s.out.String()
	if strings.Contains(out, "Address already in use") {
		return nil, fmt.Errorf("testredis: %s: %w", addr, errPortTaken)
	}
	return nil, fmt.Errorf("testredis: redis-server on %s: %w\n%s", addr, err, out)
}

// waitReady polls until the server answers PING, and with assignSlots gives all slots to it and waits
// for cluster_state:ok.
func (s *server) waitReady(assignSlots bool) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.done:
			return errors.New("exited before it answered PING")
		default:
		}
		reply, err := s.do("PING")
		if err == nil && reply == "PONG" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %s (last: %q, %v)", readyTimeout, reply, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !assignSlots {
		return nil
	}
	if reply, err := s.do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || reply != "OK" {
		return fmt.Errorf("cluster addslotsrange: %q, %v", reply, err)
	}
	for {
		reply, err := s.do("CLUSTER", "INFO")
		if err == nil && strings.Contains(reply, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok within %s (last: %q, %v)", readyTimeout, reply, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// do sends one command on a new connection and returns a simple-string, integer or bulk-string reply.
func (s *server) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// Short: redis answers in microseconds, and whatever else holds a clashing port may never answer.
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, ":"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// kill ends the process and waits for it.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stop kills the server, waits for it and removes its directory. It is safe to call more than once.
func (s *server) stop() {
	s.once.Do(func() {
		s.kill()
		_ = os.RemoveAll(s.dir)
	})
}

// freePort asks the kernel for a free loopback port. Another process may take it before redis-server
// binds it; start retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output; exec writes it from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
