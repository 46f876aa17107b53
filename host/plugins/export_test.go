package plugins

// SetStartHook makes every background instance start of plugins r loads afterwards call hook first, so
// that a test can hold a start at a known point instead of racing it.
func SetStartHook(r *Runtime, hook func()) { r.startHook = hook }

// SetYieldHook makes every background yield of plugins r loads afterwards call hook first.
func SetYieldHook(r *Runtime, hook func()) { r.yieldHook = hook }
