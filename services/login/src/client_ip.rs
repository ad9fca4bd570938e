//! The client address a request is counted against. A forwarding header is believed
//! only from a configured proxy, and only as far back as the chain stays inside the
//! configured proxies; IPv6 clients are counted per /64, the block one subscriber
//! usually holds, so rotating through a block buys no extra attempts.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::state::AppState;
use crate::LoginError;

/// An address block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    addr: IpAddr,
    prefix: u8,
}

impl Block {
    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(net)), self.prefix, 32)
                    == mask(u128::from(u32::from(ip)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), self.prefix, 128) == mask(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn mask(bits: u128, prefix: u8, width: u8) -> u128 {
    let host_bits = u32::from(width.saturating_sub(prefix));
    if host_bits >= 128 {
        0
    } else {
        bits >> host_bits
    }
}

impl TryFrom<&str> for Block {
    type Error = LoginError;

    /// `203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`.
    fn try_from(text: &str) -> Result<Self, LoginError> {
        let bad = || {
            LoginError::Config(format!(
                "trusted_proxies: {text:?} is not an address or a block like 10.0.0.0/8"
            ))
        };
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            width
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?
        };
        Ok(Block { addr, prefix })
    }
}

/// The key a request is counted under: the client's IPv4 address, or its IPv6 /64.
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    network_key(client_addr(
        state.config.client_ip_header.as_deref(),
        &state.trusted_proxies,
        peer.ip(),
        headers,
    ))
}

/// The client's address: the peer, unless the peer is a trusted proxy and names, in
/// `header`, who it forwarded for. The header is read from the right (the nearest hop)
/// and every hop that is itself a trusted proxy is skipped; the first other one is the
/// client. Anything unreadable stops the walk at the last address that was trusted.
pub fn client_addr(
    header: Option<&str>,
    trusted: &[Block],
    peer: IpAddr,
    headers: &HeaderMap,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|block| block.contains(ip));
    let Some(header) = header else {
        return peer;
    };
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// The rate-limit key of `ip`: IPv4 as it is, IPv6 by its /64.
pub fn network_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", value.parse().expect("header"));
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_block() {
        assert_eq!(
            network_key(ip("2001:db8:1:2:aaaa::1")),
            network_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            network_key(ip("2001:db8:1:2::1")),
            network_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(network_key(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(network_key(ip("::ffff:203.0.113.9")), "203.0.113.9");
    }

    #[test]
    fn the_forwarding_header_is_ignored_from_a_peer_that_is_not_a_trusted_proxy() {
        let trusted = [Block::try_from("10.0.0.0/8").expect("block")];
        let forged = headers("198.51.100.1");
        assert_eq!(
            client_addr(
                Some("x-forwarded-for"),
                &trusted,
                ip("203.0.113.5"),
                &forged
            ),
            ip("203.0.113.5"),
            "anyone can write the header; only a proxy's word counts"
        );
        assert_eq!(
            client_addr(Some("x-forwarded-for"), &[], ip("10.0.0.2"), &forged),
            ip("10.0.0.2"),
            "no trusted proxies: the header is never believed"
        );
    }

    #[test]
    fn the_client_is_the_nearest_hop_that_is_not_a_trusted_proxy() {
        let trusted = [
            Block::try_from("10.0.0.0/8").expect("block"),
            Block::try_from("192.0.2.7").expect("address"),
        ];
        // The client put a fake address first; the proxies appended what they saw.
        let chain = headers("1.2.3.4, 198.51.100.23, 192.0.2.7");
        assert_eq!(
            client_addr(Some("x-forwarded-for"), &trusted, ip("10.1.2.3"), &chain),
            ip("198.51.100.23")
        );
        let garbage = headers("1.2.3.4, not-an-ip");
        assert_eq!(
            client_addr(Some("x-forwarded-for"), &trusted, ip("10.1.2.3"), &garbage),
            ip("10.1.2.3"),
            "an unreadable hop stops the walk at the last trusted address"
        );
    }

    #[test]
    fn blocks_parse_and_refuse_nonsense() {
        assert!(Block::try_from("2001:db8::/32")
            .expect("block")
            .contains(ip("2001:db8:ffff::1")));
        assert!(Block::try_from("10.0.0.0/33").is_err());
        assert!(Block::try_from("ten").is_err());
    }
}
