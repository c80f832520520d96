// Package server assembles keygate's HTTP service: it builds each capability
// (oidc, login, mfa, …) from explicit dependencies, mounts them on one
// router in one readable list, wraps them in the shared middleware, and runs
// the background work (key reload, alert delivery, expiry). Capabilities
// never import each other; they meet in storage.
package server
