//! Round-trip time estimation (RFC 6298) and the timeouts derived from it.
//!
//! There is one timeout formula, [`Rtt::timeout`]: `srtt + max(1, 4·rttvar)`,
//! rounded up to a whole millisecond. The retransmission timeout is that value
//! clamped to `rto_min_ms..=rto_max_ms` and doubled per expiry; the probe
//! timeout is the same value doubled per unanswered probe, without the lower
//! clamp (a spurious probe costs one ping, a spurious retransmission costs
//! data, so only the latter is held back on fast links).

use crate::net::Config;

/// The estimator of one peer.
#[derive(Debug, Default)]
pub(crate) struct Rtt {
    srtt: f64,
    rttvar: f64,
    sampled: bool,
    /// Retransmission-timeout doublings since the last new acknowledgement.
    backoff: u32,
}

impl Rtt {
    /// Takes one sample of `r` ms (first sample: srtt `r`, rttvar `r/2`; then gains 1/8 and 1/4).
    pub(crate) fn sample(&mut self, r: f64) {
        if !self.sampled {
            self.srtt = r;
            self.rttvar = r / 2.0;
            self.sampled = true;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
    }

    /// Smoothed RTT in ms, once sampled.
    pub(crate) fn srtt(&self) -> Option<f64> {
        self.sampled.then_some(self.srtt)
    }

    /// `ceil(srtt + max(1, 4·rttvar))` ms, once sampled: the base of every timeout.
    pub(crate) fn timeout(&self) -> Option<u64> {
        self.sampled
            .then(|| (self.srtt + (4.0 * self.rttvar).max(1.0)).ceil() as u64)
    }

    /// The retransmission timeout: [`Rtt::timeout`] (or `rto_initial_ms` before a sample)
    /// clamped to `rto_min_ms..=rto_max_ms`, doubled per expiry up to `rto_max_ms`.
    pub(crate) fn rto(&self, cfg: &Config) -> u64 {
        let base = self.timeout().unwrap_or(cfg.rto_initial_ms);
        let base = base.clamp(cfg.rto_min_ms, cfg.rto_max_ms);
        base.saturating_mul(1u64 << self.backoff.min(20)).min(cfg.rto_max_ms)
    }

    /// The probe timeout after `probes` unanswered probes: [`Rtt::timeout`] doubled per probe;
    /// `None` before a sample (then only the retransmission timeout runs).
    pub(crate) fn pto(&self, probes: u32) -> Option<u64> {
        self.timeout().map(|t| t.saturating_mul(1u64 << probes.min(20)))
    }

    /// The time guard of fast retransmit: a packet younger than this is never declared lost
    /// (`srtt + max(srtt/4, 2·rttvar)`, or `rto_initial_ms` before a sample), so packets
    /// reordered by jitter are not resent spuriously.
    pub(crate) fn loss_guard(&self, cfg: &Config) -> u64 {
        if self.sampled {
            (self.srtt + (self.srtt / 4.0).max(2.0 * self.rttvar)) as u64
        } else {
            cfg.rto_initial_ms
        }
    }

    /// Doubles the retransmission timeout after an expiry (until it reaches `rto_max_ms`).
    pub(crate) fn back_off(&mut self, cfg: &Config) {
        if self.rto(cfg) < cfg.rto_max_ms {
            self.backoff += 1;
        }
    }

    /// A new acknowledgement arrived: the retransmission timeout is the estimate again.
    pub(crate) fn reset_backoff(&mut self) {
        self.backoff = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Rtt;
    use crate::net::Config;

    #[test]
    fn should_derive_rto_and_probe_timeout_from_one_estimate() {
        let cfg = Config::default();
        let mut r = Rtt::default();
        assert_eq!(r.rto(&cfg), cfg.rto_initial_ms, "before a sample: the initial RTO");
        assert_eq!(r.pto(0), None, "and no probes");
        r.sample(10.0);
        // srtt 10, rttvar 5: 10 + 20 = 30.
        assert_eq!(r.timeout(), Some(30));
        assert_eq!((r.rto(&cfg), r.pto(0), r.pto(2)), (30, Some(30), Some(120)));
        r.sample(10.0);
        // rttvar 3.75: 10 + 15 = 25, under the 30 ms floor of the RTO but not of the probe.
        assert_eq!((r.timeout(), r.rto(&cfg), r.pto(0)), (Some(25), 30, Some(25)));
    }

    #[test]
    fn should_double_the_rto_per_expiry_up_to_the_cap_and_reset_on_ack() {
        let cfg = Config::default();
        let mut r = Rtt::default();
        r.sample(100.0);
        assert_eq!(r.rto(&cfg), 300);
        let mut seen = vec![r.rto(&cfg)];
        for _ in 0..6 {
            r.back_off(&cfg);
            seen.push(r.rto(&cfg));
        }
        assert_eq!(seen, [300, 600, 1200, 2000, 2000, 2000, 2000]);
        r.reset_backoff();
        assert_eq!(r.rto(&cfg), 300);
    }

    #[test]
    fn should_guard_fast_retransmit_by_a_quarter_srtt_or_twice_rttvar() {
        let cfg = Config::default();
        let mut r = Rtt::default();
        assert_eq!(r.loss_guard(&cfg), cfg.rto_initial_ms);
        r.sample(40.0);
        // rttvar 20: 40 + max(10, 40) = 80.
        assert_eq!(r.loss_guard(&cfg), 80);
    }
}
