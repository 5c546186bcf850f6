package hwbench

// addChain runs n iterations of chainAdds dependent adds (clock_amd64.s).
//
//go:noescape
func addChain(n uint64)

// chainAdds is the number of dependent adds in one addChain iteration.
const chainAdds = 100

// haveAddChain reports whether addChain measures cycles on this architecture.
const haveAddChain = true
