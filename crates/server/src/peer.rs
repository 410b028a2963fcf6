//! Who a request comes from: its TCP peer, or, when the peer is a proxy DraftStore trusts (TRUSTED_PROXIES), the
//! client that proxy names in `X-Forwarded-For` (or, without one, `Forwarded: for=`). The rate limit of anonymous
//! callers and the request logs use it. Only a trusted peer may name the client: a header sent by anyone else is
//! ignored, so that a client cannot pick its own rate-limit bucket.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::setting::{self, Setting};

/// Which peers may name the client.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_args = setting::by_convention)]
pub struct PeerSettings {
    /// Proxies (comma-separated networks such as `10.0.0.0/8`, or addresses) whose connections may name the client
    /// in `X-Forwarded-For` or `Forwarded`; that client then feeds the rate limit and the request log. Headers from
    /// any other peer are ignored [default: none].
    #[arg(long, env = "TRUSTED_PROXIES", value_name = "CIDRS", value_parser = trusted_proxies())]
    pub trusted_proxies: TrustedProxies,
}

/// Networks of trusted proxies.
fn trusted_proxies() -> Setting<TrustedProxies> {
    Setting::new(|text| TrustedProxies::parse(text).map_err(|e| setting::invalid(text, e)))
}

/// The address a request comes from, as [`TrustedProxies::client`] found it; in a REST request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The networks whose connections may name the client (TRUSTED_PROXIES); empty: none may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma-separated networks (`10.0.0.0/8`) or addresses (`192.0.2.7`); empty for none.
    pub fn parse(text: &str) -> Result<Self, String> {
        let nets = text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("'{item}' is not a network (10.0.0.0/8) or an address (192.0.2.7)"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; otherwise the right-most address of
    /// `X-Forwarded-For` (all its values, in order) that is not a trusted proxy, or of `Forwarded`'s `for=` when
    /// there is no `X-Forwarded-For`. An entry that is no address (`unknown`, an obfuscated name) ends the walk at
    /// the proxy that wrote it.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
        forwarded: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        if self.is_empty() || !self.trusts(peer) {
            return canonical(peer);
        }
        let mut hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).map(str::trim).collect();
        if hops.is_empty() {
            hops = forwarded.flat_map(|value| value.split(',')).filter_map(forwarded_for_of).collect();
        }
        let mut client = canonical(peer);
        for hop in hops.into_iter().rev() {
            let Some(address) = parse_hop(hop) else { break };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// The `for=` of one element of a `Forwarded` header (RFC 7239), unquoted.
fn forwarded_for_of(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let address = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(canonical(address))
}

/// IPv4 addresses seen through an IPv6 socket (`::ffff:192.0.2.7`) as the IPv4 addresses they are.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn client(proxies: &str, peer: &str, xff: &[&str], forwarded: &[&str]) -> IpAddr {
        let proxies = TrustedProxies::parse(proxies).expect("valid");
        proxies.client(ip(peer), xff.iter().copied(), forwarded.iter().copied())
    }

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        assert_eq!(client("", "10.0.0.1", &["203.0.113.9"], &[]), ip("10.0.0.1"), "none trusted");
        assert_eq!(client("10.0.0.0/8", "198.51.100.4", &["203.0.113.9"], &[]), ip("198.51.100.4"), "forged");
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &["203.0.113.9"], &[]), ip("203.0.113.9"));
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &[], &[]), ip("10.0.0.1"), "a proxy's own request");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        // The client sent a forged first hop; the proxies appended what they saw.
        let hops = ["1.2.3.4, 203.0.113.9", "10.0.0.2"];
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &hops, &[]), ip("203.0.113.9"));
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &["10.0.0.3, 10.0.0.2"], &[]), ip("10.0.0.3"), "all trusted");
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &["unknown, 10.0.0.2"], &[]), ip("10.0.0.2"), "no address");
        assert_eq!(client("10.0.0.1", "::ffff:10.0.0.1", &["203.0.113.9:5000"], &[]), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_is_read_without_x_forwarded_for() {
        let forwarded = [r#"for=198.51.100.17;proto=https, For="[2001:db8:cafe::17]:4711""#];
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &[], &forwarded), ip("2001:db8:cafe::17"));
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &["203.0.113.9"], &forwarded), ip("203.0.113.9"), "XFF first");
    }

    #[test]
    fn settings_are_networks_or_addresses() {
        assert_eq!(TrustedProxies::parse(" ").expect("empty"), TrustedProxies::default());
        assert!(TrustedProxies::parse("10.0.0.0/8, 192.0.2.7,2001:db8::/32").is_ok());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
    }
}
