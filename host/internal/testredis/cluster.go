package testredis

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// nodeTimeout is each cluster node's cluster-node-timeout: how long a primary may be silent before
	// its replica starts an election. Short, so that a failover takes seconds, not the default 15 s.
	nodeTimeout = 1000 * time.Millisecond
	// clusterTimeout bounds forming the cluster and each failover; generous for a busy 2-core machine.
	clusterTimeout = 60 * time.Second
)

// Cluster is a Redis Cluster of three primaries, each with one replica: six redis-server processes in
// cluster mode on free loopback ports, formed with `redis-cli --cluster create --cluster-replicas 1`.
// Its methods are safe for concurrent use.
type Cluster struct {
	mu    sync.Mutex
	nodes []*server
}

// StartReplicatedCluster starts a six-node cluster (three primaries, three replicas) for t and waits
// until every slot is served and every replica is in sync. The nodes are killed, and waited for, when
// t's cleanup runs. It calls t.Fatal if redis-server or redis-cli is missing or the cluster does not form.
func StartReplicatedCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startReplicatedCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func startReplicatedCluster() (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New(InstallHint + " (redis-cli comes with it)")
	}
	c := &Cluster{}
	for range 6 {
		s, err := start(config{nextPort: freePort, cluster: true, node: true})
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.nodes = append(c.nodes, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("testredis: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitHealthy(time.Now().Add(clusterTimeout)); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Logs returns every node's redis-server output since it first started, restarts included, each under
// a header naming the node: what a failing test shows to explain a failover.
func (c *Cluster) Logs() string {
	c.mu.Lock()
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	var b strings.Builder
	for _, s := range nodes {
		fmt.Fprintf(&b, "==== redis-server %s\n%s\n", s.addr, s.out.String())
	}
	return b.String()
}

// Addrs returns every node's address (host:port), primaries and replicas: the seed list for
// redis.ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.addr
	}
	return addrs
}

// Primaries returns the addresses of the nodes that are primaries now, as the cluster reports them.
func (c *Cluster) Primaries() ([]string, error) {
	roles, err := c.roles()
	if err != nil {
		return nil, err
	}
	var out []string
	for addr, role := range roles {
		if role == "master" {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out, nil
}

// KillPrimary kills one primary without warning (SIGKILL), waits until its replica has taken over its
// slots, then restarts the killed node, which rejoins as the new primary's replica, and waits until
// the cluster is healthy again (every slot served, every replica in sync). It returns the killed
// node's address. Writes in flight during the failover may fail or, replication being asynchronous,
// be lost, as in a real cluster. The wait is bounded by ctx and by a minute.
func (c *Cluster) KillPrimary(ctx context.Context) (killed string, err error) {
	return c.killPrimary(ctx, func(primaries []string) string {
		return primaries[time.Now().Nanosecond()%len(primaries)]
	})
}

// KillBusiestPrimary is KillPrimary for the primary that holds the most keys, so that the failover
// concerns the data under test even when it all lives in one hash slot.
func (c *Cluster) KillBusiestPrimary(ctx context.Context) (killed string, err error) {
	return c.killPrimary(ctx, func(primaries []string) string {
		best, most := primaries[0], int64(-1)
		for _, p := range primaries {
			n, err := c.node(p).do("DBSIZE")
			if err != nil {
				continue
			}
			if v, err := strconv.ParseInt(n, 10, 64); err == nil && v > most {
				best, most = p, v
			}
		}
		return best
	})
}

func (c *Cluster) killPrimary(ctx context.Context, choose func(primaries []string) string) (killed string, err error) {
	primaries, err := c.Primaries()
	if err != nil {
		return "", err
	}
	if len(primaries) == 0 {
		return "", errors.New("testredis: no primary to kill")
	}
	killed = choose(primaries)
	replicas, err := c.replicasOf(killed)
	if err != nil {
		return killed, err
	}
	if len(replicas) == 0 {
		return killed, fmt.Errorf("testredis: primary %s has no replica to take over", killed)
	}
	s := c.node(killed)
	s.kill()
	deadline := time.Now().Add(clusterTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Promoted: one of its replicas says it is a primary, and every surviving node says the cluster is
	// ok and no longer counts the killed node as a live primary. Only then may the killed node come
	// back: with persistence off it returns empty, and were it still the primary then, its replica would
	// copy the empty data set (the hazard Redis's replication guide warns of).
	for {
		if err := c.promoted(killed, replicas); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return killed, fmt.Errorf("testredis: no replica took over from %s: %w", killed, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.restart(s); err != nil {
		return killed, err
	}
	return killed, c.waitHealthy(deadline)
}

// Stop kills every node and removes their directories. It is safe to call more than once.
func (c *Cluster) Stop() {
	c.mu.Lock()
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	for _, s := range nodes {
		s.stop()
	}
}

func (c *Cluster) node(addr string) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.nodes {
		if s.addr == addr {
			return s
		}
	}
	return nil
}

// restart starts a killed node again with its arguments and its nodes.conf, on its port.
func (c *Cluster) restart(old *server) error {
	// The same output buffer: a node's log reads on across its restarts (Logs).
	s := &server{addr: old.addr, dir: old.dir, bin: old.bin, args: old.args, out: old.out,
		done: make(chan struct{})}
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	setParentDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("testredis: restart %s: %w", s.addr, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(false); err != nil {
		s.kill()
		return fmt.Errorf("testredis: restart %s: %w\n%s", s.addr, err, s.out.String())
	}
	c.mu.Lock()
	for i, n := range c.nodes {
		if n == old {
			c.nodes[i] = s
		}
	}
	c.mu.Unlock()
	return nil
}

// replicasOf returns the addresses of the replicas of the primary at addr, from CLUSTER NODES.
func (c *Cluster) replicasOf(addr string) ([]string, error) {
	out, err := c.node(addr).do("CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("testredis: cluster nodes on %s: %w", addr, err)
	}
	type line struct{ id, addr, flags, master string }
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		a := f[1]
		if i := strings.IndexByte(a, '@'); i >= 0 {
			a = a[:i]
		}
		lines = append(lines, line{id: f[0], addr: a, flags: f[2], master: f[3]})
	}
	var id string
	for _, l := range lines {
		if l.addr == addr {
			id = l.id
		}
	}
	var replicas []string
	for _, l := range lines {
		if id != "" && l.master == id && strings.Contains(l.flags, "slave") && !strings.Contains(l.flags, "fail") {
			replicas = append(replicas, l.addr)
		}
	}
	return replicas, nil
}

// roles reads CLUSTER NODES from the first node that answers: address -> "master" or "slave", without
// the nodes marked failed.
func (c *Cluster) roles() (map[string]string, error) {
	var lastErr error
	for _, addr := range c.Addrs() {
		out, err := c.node(addr).do("CLUSTER", "NODES")
		if err != nil {
			lastErr = err
			continue
		}
		roles := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			node := f[1]
			if i := strings.IndexByte(node, '@'); i >= 0 {
				node = node[:i]
			}
			flags := f[2]
			switch {
			case strings.Contains(flags, "fail"):
			case strings.Contains(flags, "master"):
				roles[node] = "master"
			case strings.Contains(flags, "slave"):
				roles[node] = "slave"
			}
		}
		return roles, nil
	}
	return nil, fmt.Errorf("testredis: no cluster node answers CLUSTER NODES: %w", lastErr)
}

// promoted reports nil once one of replicas is a primary, every living node says cluster_state:ok, and
// none calls killed a live primary.
func (c *Cluster) promoted(killed string, replicas []string) error {
	took := false
	for _, r := range replicas {
		if info, err := c.node(r).do("INFO", "replication"); err == nil && strings.Contains(info, "role:master") {
			took = true
		}
	}
	if !took {
		return fmt.Errorf("no replica of %s is a primary yet", killed)
	}
	for _, addr := range c.Addrs() {
		if addr == killed {
			continue
		}
		s := c.node(addr)
		info, err := s.do("CLUSTER", "INFO")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster not ok", addr)
		}
		nodes, err := s.do("CLUSTER", "NODES")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(nodes, "\n") {
			if strings.Contains(line, " "+killed+"@") && strings.Contains(line, "master") &&
				!strings.Contains(line, "fail") {
				return fmt.Errorf("%s still sees %s as a primary", addr, killed)
			}
		}
	}
	return nil
}

// waitHealthy polls until every node says cluster_state:ok, the cluster has three primaries and three
// replicas, and every replica's link to its primary is up.
func (c *Cluster) waitHealthy(deadline time.Time) error {
	var last error
	for {
		last = c.healthy()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testredis: cluster not healthy in time: %w", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) healthy() error {
	for _, addr := range c.Addrs() {
		s := c.node(addr)
		info, err := s.do("CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", addr)
		}
		repl, err := s.do("INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("%s: replica not in sync", addr)
		}
	}
	roles, err := c.roles()
	if err != nil {
		return err
	}
	n := map[string]int{}
	for _, r := range roles {
		n[r]++
	}
	if n["master"] != 3 || n["slave"] != 3 {
		return fmt.Errorf("roles %v, want 3 primaries and 3 replicas", n)
	}
	return nil
}

// WaitReplicated polls until every primary's replica has acknowledged all the primary's writes so far
// (its replication offset equals the primary's), so that a KillPrimary right after loses nothing. The
// wait is bounded by ctx and by a minute.
func (c *Cluster) WaitReplicated(ctx context.Context) error {
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := c.replicated()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("testredis: replicas not caught up: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) replicated() error {
	for _, addr := range c.Addrs() {
		info, err := c.node(addr).do("INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		if !strings.Contains(info, "role:master") {
			continue
		}
		var primary, replica string
		for _, line := range strings.Split(info, "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				primary = v
			}
			if strings.HasPrefix(line, "slave0:") {
				for _, kv := range strings.Split(strings.TrimPrefix(line, "slave0:"), ",") {
					if v, ok := strings.CutPrefix(kv, "offset="); ok {
						replica = v
					}
				}
			}
		}
		if replica == "" || primary != replica {
			return fmt.Errorf("%s: replica offset %q, primary %q", addr, replica, primary)
		}
	}
	return nil
}
