// The page a link in a kluis e-mail opens. It acts only when the user clicks (a POST), so a
// mail scanner that follows the link changes nothing. The token is in the URL's fragment,
// which the browser never sends to the server; the page takes it out of the address bar at once.
"use strict";

(() => {
  const T = (key) => KLUIS_TEXT[key] ?? key;
  const $ = (id) => document.getElementById(id);
  for (const el of document.querySelectorAll("[data-text]")) el.textContent = T(el.dataset.text);
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("not-me");
  history.replaceState(null, "", location.pathname);
  if (!token) {
    $("act-go").hidden = true;
    $("status").textContent = T("act.no-token");
    return;
  }
  $("act-go").addEventListener("click", async () => {
    $("act-go").disabled = true;
    try {
      const res = await fetch("/api/not-me", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token }),
        credentials: "omit",
        cache: "no-store",
      });
      if (res.ok) {
        $("status").textContent = T("act.not-me-done");
        $("act-go").hidden = true;
      } else {
        let detail = res.statusText;
        try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
        $("status").textContent = T("act.failed") + detail;
        $("act-go").disabled = false;
      }
    } catch (e) {
      $("status").textContent = T("act.failed") + e.message;
      $("act-go").disabled = false;
    }
  });
})();
