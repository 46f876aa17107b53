package store

import "github.com/kassehq/kasse/host/payment"

// LayoutKey exposes the key builders to the external tests: kind is "session" (id), "ref" (merchant,
// ref), "idem" (scope, key) or "polls" (the id whose partition's schedule is wanted).
func LayoutKey(r *Redis, kind string, parts ...string) string {
	switch kind {
	case "session":
		return r.sessionKey(parts[0])
	case "ref":
		return r.refKey(parts[0], parts[1])
	case "idem":
		return r.idemKey(parts[0], parts[1])
	case "polls":
		return r.pollsKey(partitionOf(parts[0]))
	case "list": // session id, merchant, state ("" for the merchant's whole index)
		return r.listKey(partitionOf(parts[0]), parts[1], payment.State(parts[2]))
	}
	panic("store: LayoutKey: unknown kind " + kind)
}

// SameSlot reports whether two keys share a Redis Cluster hash tag.
func SameSlot(a, b string) bool { return samePartition(a, b) }
