//! Per-caller rate limits (`RATE_LIMIT` requests per second, bursts of `RATE_LIMIT_BURST`): a token bucket per
//! tenant, or per client address when `AUTH_MODE=none`, kept in this replica's memory (governor's GCRA). Both the
//! REST and the gRPC adapter ask it once per API call, after authentication; probes, metrics, the built-in page
//! and the local backend's signed URLs are not counted. An IPv6 client is keyed on its /64, the network one
//! subscriber or host is given: keyed on its whole address it could draw a fresh bucket for each request.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::auth::Caller;
use crate::error::Error;
use crate::setting::{self, Unset};

/// Forget idle callers every this many checks, so that memory follows the callers of the last seconds.
const PRUNE_EVERY: u64 = 4096;

/// RATE_LIMIT and RATE_LIMIT_BURST.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_args = setting::by_convention)]
pub struct RateLimitSettings {
    /// API requests per second allowed to each tenant (each client address when AUTH_MODE=none, an IPv6 client's
    /// /64 network), per replica; REST and gRPC count together; `0` turns rate limiting off.
    #[arg(long = "rate-limit", env = "RATE_LIMIT", default_value = "0", value_name = "PER_SECOND")]
    #[arg(value_parser = setting::whole(0, 1_000_000))]
    pub per_second: u32,
    /// Requests a caller may send at once before RATE_LIMIT applies [default: RATE_LIMIT].
    #[arg(long = "rate-limit-burst", env = "RATE_LIMIT_BURST", value_name = "REQUESTS")]
    #[arg(value_parser = setting::optional(setting::whole(1, 1_000_000)))]
    pub burst: Unset<u32>,
}

impl RateLimitSettings {
    /// `None`: no rate limit (RATE_LIMIT=0).
    pub fn limit(&self) -> Option<RateLimit> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = self.burst.and_then(NonZeroU32::new).unwrap_or(per_second);
        Some(RateLimit { per_second, burst })
    }
}

/// A rate limit as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// The token buckets of every caller seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            buckets: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one call of `caller` (from `peer`) over `protocol`; [`Error::RateLimited`] when its bucket is empty.
    pub fn check(&self, caller: &Caller, peer: Option<IpAddr>, protocol: &'static str) -> Result<(), Error> {
        let key = match (caller.tenant(), peer) {
            (Some(tenant), _) => format!("tenant:{}", tenant.as_str()),
            (None, Some(address)) => address_key(address),
            (None, None) => "address:unknown".to_owned(),
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.buckets.retain_recent();
        }
        match self.buckets.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metrics::counter!("draftstore_rate_limited_total", "protocol" => protocol).increment(1);
                Err(Error::RateLimited { retry_after: not_until.wait_time_from(self.clock.now()) })
            }
        }
    }
}

/// The bucket of an anonymous client: its IPv4 address, or its IPv6 address's /64 network.
fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("address:{v4}"),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("address:{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_caller_waits_and_other_callers_do_not() {
        let limit = RateLimit { per_second: NonZeroU32::new(1).expect("1"), burst: NonZeroU32::new(3).expect("3") };
        let limiter = RateLimiter::new(limit);
        let anonymous = Caller::anonymous();
        let one = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(limiter.check(&anonymous, one, "http").is_ok());
        }
        match limiter.check(&anonymous, one, "http") {
            Err(Error::RateLimited { retry_after }) => {
                assert!(retry_after.as_millis() > 0 && retry_after.as_secs() <= 1)
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limiter.check(&anonymous, Some(IpAddr::from([10, 0, 0, 2])), "http").is_ok(), "another address");
    }

    #[test]
    fn an_ipv6_client_is_one_bucket_per_64_network() {
        let limit = RateLimit { per_second: NonZeroU32::new(1).expect("1"), burst: NonZeroU32::new(2).expect("2") };
        let limiter = RateLimiter::new(limit);
        let anonymous = Caller::anonymous();
        let address = |text: &str| Some(text.parse::<IpAddr>().expect("an address"));
        assert!(limiter.check(&anonymous, address("2001:db8:1:2::1"), "http").is_ok());
        assert!(limiter.check(&anonymous, address("2001:db8:1:2:ffff:ffff:ffff:fffe"), "http").is_ok());
        let third = limiter.check(&anonymous, address("2001:db8:1:2:dead:beef:0:7"), "http");
        assert!(matches!(third, Err(Error::RateLimited { .. })), "the same /64 shares one bucket: {third:?}");
        assert!(limiter.check(&anonymous, address("2001:db8:1:3::1"), "http").is_ok(), "another /64");
        assert_eq!(address_key("::ffff:10.0.0.1".parse().expect("mapped")), "address:10.0.0.1");
    }
}
