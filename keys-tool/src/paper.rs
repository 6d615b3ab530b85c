//! The printable paper page around kluis-core's paper codec (FORMAT.md §7).

use anyhow::Result;
use kluis_core::keyfile::KeyFileKind;
use kluis_core::{UnlockedKeyFile, paper};
use zeroize::Zeroizing;

use crate::error::fail;

/// Groups per printed row.
const ROW: usize = 6;
/// Marks the groups inside the page, so `restore --from-paper page.html` finds them.
const PAGE_START: &str = "<pre id=\"kluis-paper\">";
const PAGE_END: &str = "</pre>";

/// Parses the groups from a page or typed text, explaining a typo by group, row and column.
pub(crate) fn decode(input: &str) -> Result<UnlockedKeyFile> {
    let body = match input.find(PAGE_START) {
        Some(at) => {
            let rest = input.get(at + PAGE_START.len()..).unwrap_or_default();
            rest.get(..rest.find(PAGE_END).unwrap_or(rest.len())).unwrap_or_default()
        }
        None => input,
    };
    paper::decode(body).map_err(|e| match e {
        kluis_core::Error::PaperTypo { group } => fail(
            format!("group {group} (row {}, column {}) has a typo", (group - 1) / ROW + 1, (group - 1) % ROW + 1),
            "Compare that group with the paper: letters A-Z and digits 2-7 only (no 0, 1, 8 or 9).",
        ),
        kluis_core::Error::PaperChecksum => fail(e.to_string(), "Check that every row is there once, in order."),
        other => fail(format!("this is not a kluis paper backup: {other}"), "Check the groups against the paper."),
    })
}

/// The printable page: groups, QR code, fingerprint, and instructions.
pub(crate) fn page(file: &UnlockedKeyFile) -> Result<Zeroizing<String>> {
    let groups = paper::encode(file);
    let info = file.info();
    let mut rows = Zeroizing::new(String::new());
    for (r, row) in groups.chunks(ROW).enumerate() {
        rows.push_str(&format!("{:>2}.  {}\n", r + 1, row.join("  ")));
    }
    let qr_text = Zeroizing::new(groups.concat());
    let qr = qrcode::QrCode::with_error_correction_level(qr_text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| fail(format!("cannot make the QR code: {e}"), "Report this as a bug."))?;
    let svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).build();
    let kind = match info.kind {
        KeyFileKind::Vault => "vault key",
        KeyFileKind::BreakGlass => "break-glass key",
    };
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    Ok(Zeroizing::new(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>kluis paper backup: {label}</title>
<style>body{{font-family:sans-serif;max-width:44em;margin:2em auto}}pre{{font-size:15pt;line-height:1.6}}.warn{{border:2px solid #a00;padding:.5em}}</style>
</head><body>
<h1>kluis paper backup</h1>
<p class="warn"><strong>This page is as secret as the key.</strong> Whoever holds it can read every note of this vault.
Print it, check the print, keep it in a safe, and delete this file.</p>
<table>
<tr><th align="left">What</th><td>{kind}</td></tr>
<tr><th align="left">Label</th><td>{label}</td></tr>
<tr><th align="left">Created</th><td>{created}</td></tr>
<tr><th align="left">Fingerprint</th><td><code>{fp}</code></td></tr>
</table>
<h2>Key groups</h2>
{start}{rows}{end}
<p>To restore: <code>kluis-keys restore --from-paper --out key.kluis --expect {fp_compact}</code> and type the groups
(spaces, dashes and case do not matter). Each group's fifth character is a check: a typo is reported by its group.</p>
<h2>QR code (the same groups)</h2>
{svg}
</body></html>
"#,
        label = escape(&info.label),
        created = crate::commands::date(info.created),
        fp = info.public.fingerprint(),
        fp_compact = info.public.fingerprint().compact(),
        start = PAGE_START,
        end = PAGE_END,
        rows = rows.as_str(),
    )))
}
