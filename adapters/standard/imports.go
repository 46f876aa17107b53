// Package standard registers kasse's built-in platform adapters: import it for its side effects, as
// kasse's main package does. It owns nothing else.
package standard

import (
	// The built-in adapters, each registering itself from init.
	_ "github.com/kassehq/kasse/adapters/generic"
	_ "github.com/kassehq/kasse/adapters/shopify"
	_ "github.com/kassehq/kasse/adapters/woocommerce"
)
