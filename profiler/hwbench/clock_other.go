//go:build !amd64

package hwbench

// addChain is unavailable off amd64: the clock is not measured there.
func addChain(n uint64) {}

// chainAdds is the number of dependent adds in one addChain iteration.
const chainAdds = 100

// haveAddChain reports whether addChain measures cycles on this architecture.
const haveAddChain = false
