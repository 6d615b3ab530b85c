//! What notices and device names say about a browser and an address, in a fixed vocabulary:
//! never the User-Agent text itself, which whoever signs in chooses (a notice must not carry a
//! stranger's words, such as a link, to the account's owner).

use std::net::IpAddr;

/// The browser and system a User-Agent names, such as "Firefox on Windows".
pub fn describe(user_agent: &str) -> String {
    const BROWSERS: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Chromium (headless)"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS.iter().find(|(needle, _)| user_agent.contains(needle)).map_or("A browser", |(_, n)| n);
    match SYSTEMS.iter().find(|(needle, _)| user_agent.contains(needle)) {
        Some((_, system)) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

/// Roughly where an address is. kluis has no address-to-place database, so this says only
/// what the address itself tells.
pub fn place(ip: IpAddr) -> &'static str {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
    };
    if ip.is_loopback() {
        "this server's own machine"
    } else if private {
        "a private network (such as the practice's own)"
    } else {
        "the internet (kluis looks up no places)"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_user_agent_is_described_in_fixed_words_only() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe(chrome), "Chrome on Linux");
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        assert_eq!(describe(firefox), "Firefox on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe(safari), "Safari on iOS");
        // Whatever else a User-Agent says never reaches the text.
        let hostile = "Click https://evil.example/reset now Firefox/1";
        assert_eq!(describe(hostile), "Firefox");
        assert_eq!(describe(""), "A browser");
    }

    #[test]
    fn places_say_only_what_the_address_tells() {
        assert_eq!(place("127.0.0.1".parse().unwrap()), "this server's own machine");
        assert_eq!(place("::ffff:192.168.1.9".parse().unwrap()), "a private network (such as the practice's own)");
        assert_eq!(place("fd00::1".parse().unwrap()), "a private network (such as the practice's own)");
        assert_eq!(place("203.0.113.7".parse().unwrap()), "the internet (kluis looks up no places)");
    }
}
