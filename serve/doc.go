// Package serve is `quantscope serve`: an SSH server (charmbracelet/wish)
// that gives every connection the full interactive UI, rendered for that
// client's terminal, on one study shared by everyone connected (a
// tui.Hub with Options.Shared): one user holds control, the others watch
// and can ask for it, and the study outlives whoever started it.
//
// Only public keys listed in an authorized_keys file get in; the host key
// is an ed25519 key created on first start in the user data dir. While
// the server runs it holds a lock file there (Lock) saying what its study
// is doing, so a local quantscope warns and `bench` refuses to compete for
// the hardware.
package serve
