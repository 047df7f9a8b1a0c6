package maglev

import "math/bits"

// IsPrime reports whether n is prime. It is exact for every uint64: small
// factors are tried first, then a Miller-Rabin test with the first twelve
// primes as witnesses, which is known to have no false positives below
// 3.3e24.
func IsPrime(n uint64) bool {
	witnesses := [...]uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}
	if n < 2 {
		return false
	}
	for _, p := range witnesses {
		if n%p == 0 {
			return n == p
		}
	}
	// n is odd and > 37: write n-1 = d * 2^r with d odd.
	d := n - 1
	r := bits.TrailingZeros64(d)
	d >>= r
	for _, a := range witnesses {
		if !passesWitness(a, d, r, n) {
			return false
		}
	}
	return true
}

// passesWitness runs one Miller-Rabin round: it reports false if a proves n
// composite, where n-1 = d * 2^r.
func passesWitness(a, d uint64, r int, n uint64) bool {
	x := powMod(a, d, n)
	if x == 1 || x == n-1 {
		return true
	}
	for i := 1; i < r; i++ {
		x = mulMod(x, x, n)
		if x == n-1 {
			return true
		}
	}
	return false
}

// mulMod returns a*b mod n without overflow; a and b must be < n.
func mulMod(a, b, n uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	_, rem := bits.Div64(hi, lo, n)
	return rem
}

// powMod returns a^e mod n; a must be < n.
func powMod(a, e, n uint64) uint64 {
	result := uint64(1)
	for e > 0 {
		if e&1 == 1 {
			result = mulMod(result, a, n)
		}
		a = mulMod(a, a, n)
		e >>= 1
	}
	return result
}
