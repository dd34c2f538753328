//! The client's address, for per-address rate limits.
//!
//! Behind a reverse proxy every connection comes from the proxy, so the
//! proxy's `X-Forwarded-For` header (a de-facto standard; RFC 7239 §5.2
//! describes the same chain as `Forwarded: for=`) names the client. Anyone
//! can send that header, so it is believed only when the TCP peer is a
//! proxy the operator listed (`trusted_proxies`), and then only as far as
//! the chain of trusted proxies goes: the client is the right-most address
//! that is not itself a trusted proxy (each proxy appends the address it
//! saw; everything to the left of the first untrusted hop may be forged).
//!
//! Rate limits key IPv6 clients by their /64 network ([`limit_key`]): one
//! host usually holds a whole /64, so per-address limits on single IPv6
//! addresses would be trivially escaped.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use crate::domain::ParseError;

/// The proxies whose `X-Forwarded-For` is believed (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR blocks (`10.0.0.0/8`, `fd00::/8`) or single addresses
    /// (`127.0.0.1`, meaning /32 or /128).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, ParseError> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        ParseError::new(format!(
                            "{e:?} is not an IP address or CIDR block (e.g. \"10.0.0.0/8\")"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the TCP `peer` itself unless it is a trusted
    /// proxy; then the right-most `X-Forwarded-For` entry that is not a
    /// trusted proxy (all header lines, in order, as one list). If every
    /// entry is a trusted proxy, the left-most; if an entry cannot be read,
    /// the nearest address known (the hop that wrote it).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`
/// or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The key of per-address rate limits: IPv4 addresses as they are, IPv6
/// addresses as their /64 network.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("127.0.0.1"), ["203.0.113.7"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_name_another_client() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(ip("192.0.2.1"), ["203.0.113.7"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_hop() {
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // The client forged the left part; nginx appended the real address.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["198.51.100.9, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Two proxies in a row, and the header over two lines.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["198.51.100.9, 203.0.113.7", "10.1.2.3"]),
            ip("203.0.113.7")
        );
        // Ports and brackets.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["203.0.113.7:5678"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn missing_or_unreadable_hops_stop_at_the_nearest_known_address() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), []), ip("127.0.0.1"));
        assert_eq!(p.client_ip(ip("127.0.0.1"), ["", " "]), ip("127.0.0.1"));
        assert_eq!(p.client_ip(ip("127.0.0.1"), ["garbage"]), ip("127.0.0.1"));
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["garbage, 10.0.0.5"]),
            ip("10.0.0.5")
        );
        // Every hop a trusted proxy: the left-most.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["10.0.0.5, 10.0.0.6"]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn mapped_ipv4_addresses_match_ipv4_blocks() {
        let p = proxies(&["127.0.0.0/8"]);
        assert!(p.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), ["203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn bad_entries_are_refused_with_their_text() {
        let e = TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err();
        assert!(e.0.contains("\"10.0.0.0/33\""), "{e}");
        assert!(TrustedProxies::parse(&["nginx"]).is_err());
        assert_eq!(
            proxies(&["10.1.2.3/8"]),
            proxies(&["10.0.0.0/8"]),
            "host bits are dropped"
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_network() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(limit_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
    }

    proptest! {
        #[test]
        fn any_header_gives_the_peer_or_an_address_from_the_header(
            header in "\\PC{0,80}",
        ) {
            let p = proxies(&["127.0.0.1"]);
            let got = p.client_ip(ip("127.0.0.1"), [header.as_str()]);
            let from_header = header
                .split(',')
                .filter_map(|h| parse_hop(h.trim()))
                .any(|h| h == got);
            prop_assert!(got == ip("127.0.0.1") || from_header);
            // An untrusted peer is never replaced.
            prop_assert_eq!(
                p.client_ip(ip("192.0.2.1"), [header.as_str()]),
                ip("192.0.2.1")
            );
        }
    }
}
