//! The config snippets the tests write inline, built from one place: the
//! `[node]` section with its neighbors ([`node`]) and `[[vip]]` blocks
//! ([`Vip`]). Every snippet is on the reference network of
//! `rampart::workload::net`: node 198.18.0.1 / 2001:2::1 with MAC
//! 02:00:00:00:00:01, gateway 02:00:00:00:00:fe, backends 198.18.1.n and
//! 2001:2:0:1::n.
//!
//! A test states only what its scenario needs (which neighbors exist, which
//! keys a VIP sets); the builder writes the TOML. What a test leaves out
//! stays out, so a VIP without `table_size` still gets the loader's default.

use std::fmt::Write;

/// The MAC the reference network gives the neighbor at `address`:
/// 198.18.1.n has 02:00:00:00:01:nn and 2001:2:0:1::n has 02:00:00:00:02:nn,
/// with n read as a decimal number in both families (backend 11 is `0b`).
pub fn neighbor_mac(address: &str) -> String {
    let (family, n) = if let Some(n) = address.strip_prefix("198.18.1.") {
        (1, n)
    } else if let Some(n) = address.strip_prefix("2001:2:0:1::") {
        (2, n)
    } else {
        panic!("{address} is not a backend of the reference network")
    };
    match n.parse::<u8>() {
        Ok(n) => format!("02:00:00:00:{family:02x}:{n:02x}"),
        Err(_) => panic!("{address} is not a backend of the reference network"),
    }
}

/// The `[node]` section with `addresses`, then one `[[neighbor]]` per
/// entry of `neighbors` with its [`neighbor_mac`].
pub fn node(addresses: &[&str], neighbors: &[&str]) -> String {
    let mut s = format!(
        "\n[node]\nmac = \"02:00:00:00:00:01\"\naddresses = {}\n\
         gateway_mac = \"02:00:00:00:00:fe\"\n",
        list(addresses)
    );
    for a in neighbors {
        let _ = write!(
            s,
            "\n[[neighbor]]\naddress = \"{a}\"\nmac = \"{}\"\n",
            neighbor_mac(a)
        );
    }
    s
}

/// A TOML array of strings.
fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// One `[[vip]]` block: its keys in the order they are set, then its
/// backends. Its `Display` is the TOML.
#[derive(Clone, Debug)]
pub struct Vip {
    keys: String,
    backends: String,
}

impl Vip {
    /// A VIP with the keys every VIP has.
    pub fn new(name: &str, address: &str, port: u16, protocol: &str, mode: &str) -> Vip {
        Vip {
            keys: format!(
                "\n[[vip]]\nname = \"{name}\"\naddress = \"{address}\"\nport = {port}\n\
                 protocol = \"{protocol}\"\nmode = \"{mode}\"\n"
            ),
            backends: String::new(),
        }
    }

    /// Any other key of the VIP, `value` written as TOML (quote strings).
    pub fn key(mut self, key: &str, value: impl std::fmt::Display) -> Vip {
        let _ = writeln!(self.keys, "{key} = {value}");
        self
    }

    pub fn table_size(self, size: u32) -> Vip {
        self.key("table_size", size)
    }

    pub fn scheduler(self, scheduler: &str) -> Vip {
        self.key("scheduler", format!("\"{scheduler}\""))
    }

    pub fn local_addresses(self, addresses: &[&str]) -> Vip {
        self.key("local_addresses", list(addresses))
    }

    pub fn synproxy(self) -> Vip {
        self.key("synproxy", true)
    }

    /// `proxy_protocol = "v2"`.
    pub fn proxy_v2(self) -> Vip {
        self.key("proxy_protocol", "\"v2\"")
    }

    /// A `[vip.health]` table of `lines` (`key = value` each).
    pub fn health(mut self, lines: &str) -> Vip {
        let _ = write!(self.keys, "\n[vip.health]\n{}\n", lines.trim());
        self
    }

    /// One `[[vip.backend]]` per address, all on `port`.
    pub fn backends(mut self, addresses: &[&str], port: u16) -> Vip {
        for a in addresses {
            let _ = write!(
                self.backends,
                "\n[[vip.backend]]\naddress = \"{a}\"\nport = {port}\n"
            );
        }
        self
    }

    /// One `[[vip.backend]]` with a weight.
    pub fn weighted(mut self, address: &str, port: u16, weight: u32) -> Vip {
        let _ = write!(
            self.backends,
            "\n[[vip.backend]]\naddress = \"{address}\"\nport = {port}\nweight = {weight}\n"
        );
        self
    }

    /// One `[[vip.source]]` entry: clients in `prefixes` go to `backends`
    /// (each written as the VIP has it, `ADDRESS:PORT`). Written after the
    /// backends.
    pub fn source(mut self, prefixes: &[&str], backends: &[&str]) -> Vip {
        let _ = write!(
            self.backends,
            "\n[[vip.source]]\nprefixes = {}\nbackends = {}\n",
            list(prefixes),
            list(backends)
        );
        self
    }

    /// One `[[vip.backend]]` per address without a port, as DR backends are
    /// written (they keep the VIP's port).
    pub fn backends_without_port(mut self, addresses: &[&str]) -> Vip {
        for a in addresses {
            let _ = write!(self.backends, "\n[[vip.backend]]\naddress = \"{a}\"\n");
        }
        self
    }
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.keys)?;
        f.write_str(&self.backends)
    }
}
