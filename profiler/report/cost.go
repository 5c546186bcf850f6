package report

import "math"

// Cost is what a million inferences (samples) cost at measured throughput
// and energy. Unknown parts are NaN.
type Cost struct {
	// Instance is the machine's price for the time a million samples take:
	// price per hour ÷ 3600 ÷ throughput × 10⁶.
	Instance float64
	// KWh is the energy of a million samples: J/sample × 10⁶ ÷ 3.6·10⁶.
	KWh float64
	// Energy is KWh × price per kWh.
	Energy float64
	// Total is Instance + Energy, counting only the parts that were priced
	// (and measured); NaN when neither was.
	Total float64
}

// CostPerMillion prices a million inferences. throughput is in samples/s;
// joulesPerSample is NaN or ≤ 0 when energy was not measured; a price ≤ 0
// leaves its part out.
func CostPerMillion(throughput, joulesPerSample, pricePerHour, pricePerKWh float64) Cost {
	c := Cost{Instance: math.NaN(), KWh: math.NaN(), Energy: math.NaN(), Total: math.NaN()}
	if pricePerHour > 0 && throughput > 0 && !math.IsInf(throughput, 0) {
		c.Instance = pricePerHour / 3600 / throughput * 1e6
		c.Total = c.Instance
	}
	if joulesPerSample > 0 && !math.IsInf(joulesPerSample, 0) {
		c.KWh = joulesPerSample * 1e6 / 3.6e6
		if pricePerKWh > 0 {
			c.Energy = c.KWh * pricePerKWh
			if math.IsNaN(c.Total) {
				c.Total = c.Energy
			} else {
				c.Total += c.Energy
			}
		}
	}
	return c
}
