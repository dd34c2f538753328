//! Which addresses a request to a client-controlled URL may reach (the
//! SSRF rule of issue #16; draft-ietf-oauth-client-id-metadata-document §6
//! "Server-Side Request Forgery", RFC 7591 §5 on `jwks_uri`).
//!
//! A client chooses the URL of its metadata document and of its keys; the
//! authorization server fetches them from inside the operator's network.
//! Without a rule, a client could make mcpgate request `http://127.0.0.1`,
//! the cloud metadata service at `169.254.169.254`, or any host of the
//! private network. [`classify`] sorts an address into the ranges that are
//! not on the public Internet; [`AddressPolicy::check`] refuses them unless
//! the operator listed their network in `outbound_allow_networks`.
//!
//! The rule is applied to the **resolved** address (the caller's resolver
//! drops refused addresses, and the connection goes to a checked one), so a
//! name that resolves to `127.0.0.1` is refused like the literal.
//!
//! IPv6 forms that carry an IPv4 address are judged by that address:
//! IPv4-mapped `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), IPv4-compatible
//! `::a.b.c.d` (deprecated, §2.5.5.1), NAT64 `64:ff9b::/96` (RFC 6052) and
//! 6to4 `2002::/16` (RFC 3056). Otherwise only global unicast `2000::/3`
//! (RFC 4291 §2.4) is public, minus the special-purpose blocks of the IANA
//! registry (RFC 6890) inside it: documentation, benchmarking, ORCHID and
//! Teredo (whose embedded address is obfuscated, and which no metadata or
//! key host needs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::domain::ParseError;

/// Why an address is not a public Internet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPublic {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and IPv6 unique local
    /// addresses `fc00::/7` (RFC 4193).
    Private,
    /// `169.254/16`, `fe80::/10` (and the deprecated site-local `fec0::/10`).
    LinkLocal,
    /// Carrier-grade NAT, `100.64/10` (RFC 6598).
    SharedAddressSpace,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20` (RFC 5737, RFC 3849, RFC 9637).
    Documentation,
    /// Any other special-purpose or unallocated block (RFC 6890): `240/4`,
    /// `192.0.0/24`, `198.18/15`, benchmarking, ORCHID, Teredo, IPv6
    /// outside `2000::/3`.
    Reserved,
}

impl NonPublic {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Reserved => "a reserved address",
        }
    }
}

impl std::fmt::Display for NonPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `None` for a public Internet address; otherwise why it is not one.
pub fn classify(ip: IpAddr) -> Option<NonPublic> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<NonPublic> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_broadcast() => NonPublic::Broadcast,
        (0, _, _) => NonPublic::Unspecified,
        (127, _, _) => NonPublic::Loopback,
        (10, _, _) | (192, 168, _) => NonPublic::Private,
        (172, 16..=31, _) => NonPublic::Private,
        (169, 254, _) => NonPublic::LinkLocal,
        (100, 64..=127, _) => NonPublic::SharedAddressSpace,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => NonPublic::Documentation,
        // IETF protocol assignments, the 6to4 relay anycast, benchmarking.
        (192, 0, 0) | (192, 88, 99) | (198, 18..=19, _) => NonPublic::Reserved,
        (224..=239, _, _) => NonPublic::Multicast,
        (240..=255, _, _) => NonPublic::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<NonPublic> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => NonPublic::Unspecified,
        _ if ip.is_loopback() => NonPublic::Loopback,
        0xfc00..=0xfdff => NonPublic::Private,
        0xfe80..=0xfeff => NonPublic::LinkLocal,
        0xff00..=0xffff => NonPublic::Multicast,
        0x2001 if s[1] == 0x0db8 => NonPublic::Documentation,
        0x3fff if s[1] < 0x1000 => NonPublic::Documentation,
        // Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28
        // and ORCHIDv2 2001:20::/28.
        0x2001 if s[1] == 0 || (s[1] == 2 && s[2] == 0) || (0x10..=0x2f).contains(&s[1]) => {
            NonPublic::Reserved
        }
        0x2000..=0x3fff => return None,
        _ => NonPublic::Reserved,
    })
}

/// The IPv4 address an IPv6 address carries, for the forms that route to
/// it: mapped, compatible, NAT64 (well-known prefix) and 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        // ::a.b.c.d, except :: and ::1 themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low(hi, lo)),
        // 64:ff9b::a.b.c.d
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        // 2002:aabb:ccdd::/48
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// The SSRF rule with the operator's exemptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// `outbound_allow_networks`: CIDR blocks (`10.0.0.0/8`) or single
    /// addresses.
    pub fn parse<S: AsRef<str>>(allow: &[S]) -> Result<Self, ParseError> {
        let allow = allow
            .iter()
            .map(|s| {
                let s = s.as_ref().trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ParseError::new(format!(
                            "{s:?} is not a network (CIDR like 10.0.0.0/8) or an IP address"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// The networks exempt from the rule.
    pub fn allowed_networks(&self) -> &[IpNet] {
        &self.allow
    }

    /// `Ok` when a client-controlled request may connect to `ip`: it is
    /// public, or in an allowed network (an IPv6 form carrying an IPv4
    /// address is also matched by that address).
    pub fn check(&self, ip: IpAddr) -> Result<(), NonPublic> {
        let Some(why) = classify(ip) else {
            return Ok(());
        };
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self
            .allow
            .iter()
            .any(|net| net.contains(&ip) || v4.is_some_and(|v4| net.contains(&v4)));
        if allowed { Ok(()) } else { Err(why) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NonPublic::*;

    #[test]
    fn every_special_range_is_classified() {
        let table: &[(&str, Option<NonPublic>)] = &[
            // Public.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.216.34", None),
            ("172.15.255.255", None),
            ("172.32.0.1", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("223.255.255.255", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("2001:4860:4860::8888", None),
            // IPv4.
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.0.8", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            // IPv6.
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fc00::1", Some(Private)),
            ("fd12:3456:789a::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("fec0::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001:0:4136:e378::1", Some(Reserved)),
            ("2001:2::1", Some(Reserved)),
            ("2001:10::1", Some(Reserved)),
            ("2001:20::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("4000::1", Some(Reserved)),
            ("64:ff9b:1::1", Some(Reserved)),
            // IPv6 carrying IPv4.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::10.0.0.1", Some(Private)),
            ("::0.0.0.2", Some(Unspecified)),
            ("::8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:808:808::1", None),
        ];
        for (addr, want) in table {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(classify(ip), *want, "{addr}");
        }
    }

    #[test]
    fn allowed_networks_exempt_their_addresses_and_mapped_forms() {
        let p = AddressPolicy::parse(&["127.0.0.1/32", "10.0.0.0/8", "fd00::1"]).unwrap();
        assert_eq!(p.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(p.check("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(p.check("10.9.8.7".parse().unwrap()), Ok(()));
        assert_eq!(p.check("fd00::1".parse().unwrap()), Ok(()));
        assert_eq!(p.check("fd00::2".parse().unwrap()), Err(Private));
        assert_eq!(p.check("127.0.0.2".parse().unwrap()), Err(Loopback));
        assert_eq!(p.check("::1".parse().unwrap()), Err(Loopback));
        assert_eq!(p.check("169.254.169.254".parse().unwrap()), Err(LinkLocal));
        assert_eq!(p.check("8.8.8.8".parse().unwrap()), Ok(()));
        let none = AddressPolicy::default();
        assert_eq!(none.check("127.0.0.1".parse().unwrap()), Err(Loopback));
    }

    #[test]
    fn a_bad_network_is_named() {
        let e = AddressPolicy::parse(&["10.0.0.0/8", "intranet"]).unwrap_err();
        assert!(e.0.contains("intranet"), "{e}");
        assert!(AddressPolicy::parse(&["10.0.0.0/33"]).is_err());
    }
}
