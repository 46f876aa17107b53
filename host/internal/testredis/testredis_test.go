package testredis

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var sharedURL string

func TestMain(m *testing.M) { os.Exit(Main(m, &sharedURL)) }

func ping(t *testing.T, url string) {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on %s: %v", url, err)
	}
	if v, err := c.Get(t.Context(), "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET on %s: %q, %v", url, v, err)
	}
}

func TestMainServesTheWholeBinary(t *testing.T) {
	if !strings.HasPrefix(sharedURL, "redis://127.0.0.1:") {
		t.Fatalf("Main set url %q", sharedURL)
	}
	ping(t, sharedURL)
}

func TestStartStopsOnCleanup(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		url := Start(t)
		ping(t, url)
		o, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		addr = o.Addr
	})
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after the test's cleanup", addr)
	}
}

func TestStartCluster(t *testing.T) {
	addr := StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	// A real cluster refuses keys from two slots in one script; so must this one.
	err := c.Eval(ctx, "return 1", []string{"a", "b"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("EVAL over two slots: got %v, want CROSSSLOT", err)
	}
	if err := c.Eval(ctx, "return 1", []string{"{x}a", "{x}b"}).Err(); err != nil {
		t.Fatalf("EVAL over one hash tag: %v", err)
	}
}

func TestStartRetriesWhenThePortIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	s, err := start(config{nextPort: func() (int, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return freePort()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if calls != 2 {
		t.Errorf("ports asked for: %d, want 2", calls)
	}
	if strings.HasSuffix(s.addr, ":"+strconv.Itoa(taken)) {
		t.Errorf("server claims the taken port %d", taken)
	}
	ping(t, s.URL())
}

func TestStartGivesUpAfterRepeatedClashes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	_, err = start(config{nextPort: func() (int, error) { calls++; return taken, nil }})
	if err == nil || !strings.Contains(err.Error(), "port already in use") {
		t.Fatalf("got %v, want a port clash error", err)
	}
	if calls != portAttempts {
		t.Errorf("ports asked for: %d, want %d", calls, portAttempts)
	}
}

func TestMissingBinarySaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := start(config{nextPort: freePort})
	if err == nil || err.Error() != InstallHint {
		t.Fatalf("got %v, want %q", err, InstallHint)
	}
}

func TestReplicatedClusterFailsOver(t *testing.T) {
	c := StartReplicatedCluster(t)
	if n := len(c.Addrs()); n != 6 {
		t.Fatalf("nodes: %d, want 6", n)
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer client.Close()
	ctx := t.Context()
	// Keys in many slots, so every primary holds some.
	for i := range 30 {
		if err := client.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	}
	// Two failovers: the second may kill a node that was restarted after the first. Every write the
	// replicas had acknowledged survives both (a primary restarted empty before its replica took over
	// would wipe them).
	for round := range 2 {
		if err := c.WaitReplicated(ctx); err != nil {
			t.Fatal(err)
		}
		kill := c.KillPrimary
		if round == 1 {
			kill = c.KillBusiestPrimary
		}
		killed, err := kill(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after, err := c.Primaries()
		if err != nil || len(after) != 3 {
			t.Fatalf("round %d: primaries after failover %v, %v; want 3", round, after, err)
		}
		for _, p := range after {
			if p == killed {
				t.Errorf("round %d: %s is a primary again after it was killed; want its replica promoted", round, killed)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for i := range 30 {
			for {
				v, err := client.Get(ctx, "k"+strconv.Itoa(i)).Result()
				if err == nil && v == strconv.Itoa(i) {
					break
				}
				if err == nil || err == redis.Nil || time.Now().After(deadline) {
					t.Fatalf("round %d (killed %s): GET k%d = %q, %v; want %d", round, killed, i, v, err, i)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}
