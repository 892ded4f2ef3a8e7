//! The client's address behind a reverse proxy: `X-Forwarded-For`, read
//! only from the proxies the operator named (`--trusted-proxy`).
//!
//! Without a trusted proxy the header is ignored: anyone can write it, and
//! a client that could choose its own address could rotate it past the
//! sign-in limit ([`crate::lockout`]). With one, the entries are read from
//! the right (the hop nearest to recado) and the first address that is not
//! a trusted proxy is the client: entries further left were written by
//! whoever the client is, so a forged one is never believed (the rule of
//! nginx's `real_ip_recursive on`). An entry that is not an address stops
//! the walk at the last trusted hop, so garbage never names a client.
//!
//! Only the operators' routes use it (the sign-in limit). The per-address
//! connection cap ([`crate::server`]) counts connections before any header
//! is read, so behind a proxy it sees the proxy.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed; empty by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address for a request that came from `peer` with
    /// `headers`: `peer` itself unless it is a trusted proxy.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Several header fields are one list, in order: walk it backwards.
        let fields = headers.get_all(X_FORWARDED_FOR).iter().rev();
        for field in fields {
            let Ok(field) = field.to_str() else {
                return client;
            };
            for entry in field.rsplit(',') {
                let Some(addr) = address(entry.trim()) else {
                    return client;
                };
                client = addr;
                if !self.trusts(addr) {
                    return client;
                }
            }
        }
        client
    }
}

/// A `--trusted-proxy` value: a network (`10.0.0.0/8`, `fd00::/8`) or one
/// address (`10.1.2.3`).
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| {
            format!("`{s}` is not an address or a network (e.g. 10.0.0.0/8, 10.1.2.3, fd00::/8)")
        })
}

/// One entry of `X-Forwarded-For`: an address, possibly with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`), as proxies write them.
fn address(entry: &str) -> Option<IpAddr> {
    IpAddr::from_str(entry)
        .or_else(|_| SocketAddr::from_str(entry).map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// An IPv4 client seen through an IPv6 socket is its IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_net(n).unwrap()).collect())
    }

    fn client(trusted: &TrustedProxies, peer: &str, fields: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for f in fields {
            headers.append(X_FORWARDED_FOR, f.parse().unwrap());
        }
        trusted.client(peer.parse().unwrap(), &headers).to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            client(&none, "198.51.100.9", &["203.0.113.7"]),
            "198.51.100.9"
        );
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client(&lb, "198.51.100.9", &["203.0.113.7"]),
            "198.51.100.9"
        );
    }

    #[test]
    fn the_first_untrusted_entry_from_the_right_is_the_client() {
        let lb = proxies(&["10.0.0.0/8", "fd00::/8"]);
        assert_eq!(client(&lb, "10.0.0.1", &["203.0.113.7"]), "203.0.113.7");
        // A forged entry to the left of the real client is not believed.
        assert_eq!(
            client(&lb, "10.0.0.1", &["6.6.6.6, 203.0.113.7, 10.0.0.2"]),
            "203.0.113.7"
        );
        // Fields are one list, in order.
        assert_eq!(
            client(&lb, "10.0.0.1", &["6.6.6.6", "203.0.113.7", "10.9.9.9"]),
            "203.0.113.7"
        );
        // Ports and brackets, as proxies write them; a mapped IPv4 is IPv4.
        assert_eq!(
            client(&lb, "10.0.0.1", &["203.0.113.7:5678"]),
            "203.0.113.7"
        );
        assert_eq!(
            client(&lb, "fd00::1", &["[2001:db8::1]:443"]),
            "2001:db8::1"
        );
        assert_eq!(
            client(&lb, "::ffff:10.0.0.1", &["203.0.113.7"]),
            "203.0.113.7"
        );
    }

    #[test]
    fn garbage_or_nothing_leaves_the_last_trusted_hop() {
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(client(&lb, "10.0.0.1", &[]), "10.0.0.1");
        assert_eq!(client(&lb, "10.0.0.1", &["unknown"]), "10.0.0.1");
        assert_eq!(
            client(&lb, "10.0.0.1", &["203.0.113.7, garbage, 10.0.0.2"]),
            "10.0.0.2"
        );
        // Every hop trusted: the leftmost is as far as anyone can tell.
        assert_eq!(client(&lb, "10.0.0.1", &["10.0.0.3, 10.0.0.2"]), "10.0.0.3");
    }

    #[test]
    fn a_flag_is_a_network_or_one_address() {
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_net("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert!(parse_net("10.0.0.0/33")
            .unwrap_err()
            .contains("10.0.0.0/33"));
        assert!(parse_net("proxy.local").is_err());
    }
}
