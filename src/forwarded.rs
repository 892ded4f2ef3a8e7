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
//! the walk: the last trusted hop is then the client. Empty entries are
//! skipped, as RFC 9110 says lists are read.
//!
//! That holds only if every trusted proxy appends (or overwrites) the
//! header, as nginx's `$proxy_add_x_forwarded_for` does, and nothing else
//! in the trusted ranges can reach recado: a trusted address that passes a
//! client's header on untouched lets the client pick its address. Only
//! `X-Forwarded-For` is read, never `Forwarded` (RFC 7239): a client could
//! forge whichever of the two its proxy does not write.
//!
//! Only the operators' routes use it (the sign-in limit). The per-address
//! connection cap ([`crate::server`]) counts connections before any header
//! is read, so behind a proxy it sees the proxy. `X-Forwarded-Proto` is
//! read from anyone (`crate::studio`): a forged one can only mark the
//! forger's own cookie `Secure`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::{IpNet, Ipv4Net};

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
        // By bytes: an entry that is not text is not an address, and must
        // not hide the ones the proxy appended after it.
        let fields = headers.get_all(X_FORWARDED_FOR).iter().rev();
        for entry in fields.flat_map(|f| f.as_bytes().rsplit(|b| *b == b',')) {
            let entry = entry.trim_ascii();
            if entry.is_empty() {
                continue;
            }
            let Some(addr) = std::str::from_utf8(entry).ok().and_then(address) else {
                return client;
            };
            client = addr;
            if !self.trusts(addr) {
                return client;
            }
        }
        client
    }
}

/// A `--trusted-proxy` value: a network (`10.0.0.0/8`, `fd00::/8`) or one
/// address (`10.1.2.3`). An IPv4-mapped network is its IPv4 network, as
/// addresses are compared.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| {
            format!("`{s}` is not an address or a network (e.g. 10.0.5.0/24, 10.0.5.7, fd00::/64)")
        })?;
    let net = match net {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| e.to_string())?)
            }
            Some(_) => {
                return Err(format!(
                    "`{s}`: an IPv4-mapped network needs a prefix of at least 96"
                ))
            }
            None => net,
        },
        v4 => v4,
    };
    Ok(net.trunc())
}

/// One entry of `X-Forwarded-For`: an address, possibly with a port or in
/// brackets (`1.2.3.4:5678`, `[2001:db8::1]:443`, `[2001:db8::1]`), as
/// proxies write them.
fn address(entry: &str) -> Option<IpAddr> {
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    IpAddr::from_str(bare)
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
        for (peer, fields, expected) in [
            ("10.0.0.1", &["203.0.113.7"][..], "203.0.113.7"),
            // A forged entry to the left of the real client is not believed.
            (
                "10.0.0.1",
                &["6.6.6.6, 203.0.113.7, 10.0.0.2"],
                "203.0.113.7",
            ),
            // Fields are one list, in order.
            (
                "10.0.0.1",
                &["6.6.6.6", "203.0.113.7", "10.9.9.9"],
                "203.0.113.7",
            ),
            // Ports and brackets, as proxies write them; a mapped IPv4 is IPv4.
            ("10.0.0.1", &["203.0.113.7:5678"], "203.0.113.7"),
            ("fd00::1", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("::ffff:10.0.0.1", &["203.0.113.7"], "203.0.113.7"),
            ("10.0.0.1", &["::ffff:203.0.113.7"], "203.0.113.7"),
            ("fd00::1", &["[2001:db8::1]"], "2001:db8::1"),
            // Empty entries are skipped.
            ("10.0.0.1", &["203.0.113.7, ,"], "203.0.113.7"),
        ] {
            assert_eq!(client(&lb, peer, fields), expected, "{peer} {fields:?}");
        }
    }

    /// nginx appends the real address to whatever the client sent, in the
    /// same field: bytes that are not text must not hide it.
    #[test]
    fn an_entry_that_is_not_text_hides_nothing_after_it() {
        let lb = proxies(&["10.0.0.0/8"]);
        let peer = "10.0.0.1".parse().unwrap();
        let with = |bytes: &[u8]| {
            let mut headers = HeaderMap::new();
            let field = axum::http::HeaderValue::from_bytes(bytes).unwrap();
            headers.append(X_FORWARDED_FOR, field);
            lb.client(peer, &headers).to_string()
        };
        assert_eq!(with(b"\x80, 203.0.113.7"), "203.0.113.7");
        assert_eq!(with(b"203.0.113.7, \x80"), "10.0.0.1");
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
        assert_eq!(parse_net(" 10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert_eq!(
            parse_net("::ffff:10.0.0.0/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!(parse_net("::ffff:0.0.0.0/90").is_err());
        assert!(parse_net("10.0.0.0/33")
            .unwrap_err()
            .contains("10.0.0.0/33"));
        assert!(parse_net("proxy.local").is_err());
    }
}
