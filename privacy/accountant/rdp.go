package accountant

import (
	"math"
)

// DefaultOrders are dp_accounting's DEFAULT_RDP_ORDERS: 1 + x/10 for x in
// 1..99, then 11..63, then 128, 256, 512 and 1024.
var DefaultOrders = func() []float64 {
	var o []float64
	for x := 1; x < 100; x++ {
		o = append(o, 1+float64(x)/10)
	}
	for a := 11; a < 64; a++ {
		o = append(o, float64(a))
	}
	return append(o, 128, 256, 512, 1024)
}()

// RDP is a Rényi DP accountant. The zero value is not usable; call NewRDP.
type RDP struct {
	orders []float64
	rdp    []float64
	pure   float64 // Σ δ of PureDelta events
}

// NewRDP returns an RDP accountant over DefaultOrders.
func NewRDP() *RDP { return NewRDPOrders(DefaultOrders) }

// NewRDPOrders returns an RDP accountant over the given orders (all > 1).
func NewRDPOrders(orders []float64) *RDP {
	return &RDP{orders: append([]float64(nil), orders...), rdp: make([]float64, len(orders))}
}

// Name returns "rdp".
func (a *RDP) Name() string { return "rdp" }

// Orders returns the orders; RDPs returns the accumulated RDP at each.
func (a *RDP) Orders() []float64 { return a.orders }

// RDPs returns the accumulated RDP at each order.
func (a *RDP) RDPs() []float64 { return a.rdp }

// Compose adds e to the accountant.
func (a *RDP) Compose(e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	n := float64(e.Count)
	if e.Mechanism == PureDelta {
		a.pure += n * e.Delta
		return nil
	}
	for i, alpha := range a.orders {
		var r float64
		switch e.Mechanism {
		case SubsampledGaussian:
			r = rdpPoissonGaussian(e.SamplingRate, e.NoiseMultiplier, alpha)
		case DiscreteGaussian:
			// ρ-zCDP with ρ = Δ²/(2σ²) (Canonne, Kamath, Steinke 2020,
			// Proposition 5), so RDP(α) = αρ.
			d := float64(e.Sensitivity)
			r = alpha * d * d / (2 * e.Sigma * e.Sigma)
		case DiscreteLaplace:
			// ε-DP with ε = Δ/b implies RDP(α) ≤ min(ε, αε²/2) (ε-DP is
			// ε²/2-zCDP, Bun and Steinke 2016, Proposition 3.3).
			eps := float64(e.Sensitivity) / e.Scale
			r = math.Min(eps, alpha*eps*eps/2)
		}
		a.rdp[i] += n * r
	}
	return nil
}

// Epsilon converts the accumulated RDP to ε at delta, with the optimal
// order.
func (a *RDP) Epsilon(delta float64) (Result, error) {
	rest, ok, err := remainingDelta(delta, a.pure)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{Accountant: "rdp", Epsilon: math.Inf(1), Delta: delta}, nil
	}
	eps, order := rdpToEpsilon(a.orders, a.rdp, rest)
	return Result{Accountant: "rdp", Epsilon: eps, Delta: delta, Order: order}, nil
}

// rdpToEpsilon is dp_accounting's compute_epsilon: the improved conversion
// of Canonne, Kamath, Steinke (2020, Proposition 12), also in Asoodeh et al.
// (2020, Equation 20), with the KL-divergence bound for tiny RDP.
func rdpToEpsilon(orders, rdp []float64, delta float64) (float64, float64) {
	best, bestOrder := math.Inf(1), 0.0
	for i, a := range orders {
		r := rdp[i]
		var eps float64
		switch {
		case r < 0:
			eps = 0 // numerical noise of extreme events, as dp_accounting does
		case delta*delta+math.Expm1(-r) > 0:
			eps = 0 // δ ≤ sqrt(1 - exp(-KL))
		case a > 1.01:
			eps = r + math.Log1p(-1/a) - math.Log(delta*a)/(a-1)
		default:
			eps = math.Inf(1)
		}
		if eps < best {
			best, bestOrder = eps, a
		}
	}
	return math.Max(0, best), bestOrder
}

// rdpPoissonGaussian is the RDP at order alpha of the Gaussian mechanism
// with noise multiplier sigma on a Poisson sample with rate q.
func rdpPoissonGaussian(q, sigma, alpha float64) float64 {
	switch {
	case q == 0:
		return 0
	case math.IsInf(alpha, 1):
		return math.Inf(1)
	case q == 1:
		return alpha / (2 * sigma * sigma)
	}
	var logA float64
	if alpha == math.Trunc(alpha) {
		logA = logAInt(q, sigma, int(alpha))
	} else {
		logA = logAFrac(q, sigma, alpha)
	}
	return logA / (alpha - 1)
}

func logAdd(x, y float64) float64 {
	a, b := math.Min(x, y), math.Max(x, y)
	if math.IsInf(a, -1) {
		return b
	}
	return math.Log1p(math.Exp(a-b)) + b
}

func logComb(n, k float64) float64 {
	ln, _ := math.Lgamma(n + 1)
	lk, _ := math.Lgamma(k + 1)
	lnk, _ := math.Lgamma(n - k + 1)
	return ln - lk - lnk
}

// logAInt is log(A_α) for integer α (Mironov, Talwar, Zhang 2019, Sec 3.3).
func logAInt(q, sigma float64, alpha int) float64 {
	logA := math.Inf(-1)
	logq, log1mq := math.Log(q), math.Log1p(-q)
	for i := 0; i <= alpha; i++ {
		fi := float64(i)
		s := logComb(float64(alpha), fi) + fi*logq + float64(alpha-i)*log1mq + (fi*fi-fi)/(2*sigma*sigma)
		logA = logAdd(logA, s)
	}
	return logA
}

// logAFrac is log(A_α) for fractional α (Mironov, Talwar, Zhang 2019,
// Sec 3.3), summing the two series until both terms decrease and fall 30
// nats below the total. Like dp_accounting, it gives up (returns +Inf, so the
// order is not used) after 1000 terms.
func logAFrac(q, sigma, alpha float64) float64 {
	logA0, logA1 := math.Inf(-1), math.Inf(-1)
	z0 := sigma*sigma*math.Log(1/q-1) + 0.5
	logq, log1mq := math.Log(q), math.Log1p(-q)
	lastS0, lastS1 := math.Inf(-1), math.Inf(-1)
	for i := range 1000 {
		fi := float64(i)
		logCoef := logCombFrac(alpha, fi)
		j := alpha - fi
		logT0 := logCoef + fi*logq + j*log1mq
		logT1 := logCoef + j*logq + fi*log1mq
		logE0 := math.Log(0.5) + logErfc((fi-z0)/(math.Sqrt2*sigma))
		logE1 := math.Log(0.5) + logErfc((z0-j)/(math.Sqrt2*sigma))
		logS0 := logT0 + (fi*fi-fi)/(2*sigma*sigma) + logE0
		logS1 := logT1 + (j*j-j)/(2*sigma*sigma) + logE1
		logA0 = logAdd(logA0, logS0)
		logA1 = logAdd(logA1, logS1)
		total := logAdd(logA0, logA1)
		if logS0 < lastS0 && logS1 < lastS1 && math.Max(logS0, logS1) < total-30 {
			return total
		}
		lastS0, lastS1 = logS0, logS1
	}
	return math.Inf(1)
}

// logCombFrac is log|C(α, i)| for real α and integer i, as scipy's gammaln
// of negative arguments gives log|Γ|.
func logCombFrac(alpha, i float64) float64 {
	la, _ := math.Lgamma(alpha + 1)
	li, _ := math.Lgamma(i + 1)
	lai, _ := math.Lgamma(alpha - i + 1)
	return la - li - lai
}

// logErfc is log(erfc(x)), accurate where erfc underflows.
func logErfc(x float64) float64 {
	if x < 25 {
		return math.Log(math.Erfc(x))
	}
	// Asymptotic series: erfc(x) = exp(-x²)/(x√π) (1 - 1/(2x²) + 3/(4x⁴)
	// - 15/(8x⁶) + 105/(16x⁸)); the next term is below 1e-11 here.
	x2 := x * x
	s := 1 - 1/(2*x2) + 3/(4*x2*x2) - 15/(8*x2*x2*x2) + 105/(16*x2*x2*x2*x2)
	return -x2 - math.Log(x) - 0.5*math.Log(math.Pi) + math.Log(s)
}
