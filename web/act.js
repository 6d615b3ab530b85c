// The page links in kluis e-mails open: "this was not me" (end a session), password reset, and
// unsubscribe from an optional kind of notice.
// It acts only when the user clicks (a POST), so a mail scanner that follows a link changes
// nothing. The token is in the URL's fragment, which the browser never sends to the server; the
// page takes it out of the address bar at once.
"use strict";

(() => {
  const T = (key) => KLUIS_TEXT[key] ?? key;
  const $ = (id) => document.getElementById(id);
  const say = (m) => { $("status").textContent = m; };
  for (const el of document.querySelectorAll("[data-text]")) el.textContent = T(el.dataset.text);
  const params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);

  async function post(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    if (res.ok) return;
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }

  const notMe = params.get("not-me");
  const reset = params.get("reset");
  const unsubscribe = params.get("unsubscribe");
  if (notMe) {
    $("not-me").hidden = false;
    $("not-me-go").addEventListener("click", async () => {
      $("not-me-go").disabled = true;
      try {
        await post("/api/not-me", { token: notMe });
        say(T("act.not-me-done"));
        $("not-me-go").hidden = true;
      } catch (e) {
        say(T("act.failed") + e.message);
        $("not-me-go").disabled = false;
      }
    });
  } else if (reset) {
    $("reset").hidden = false;
    $("reset-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      try {
        await post("/api/password-reset/complete", { token: reset, password: f.password.value });
        f.reset();
        $("reset").hidden = true;
        say(T("act.reset-done"));
      } catch (e) {
        f.password.value = "";
        say(T("act.failed") + e.message);
      }
    });
  } else if (unsubscribe) {
    // An optional notice's link: nothing changes until the click (the token is in the query
    // of the POST, which the server never logs).
    $("unsubscribe").hidden = false;
    $("unsubscribe-go").addEventListener("click", async () => {
      $("unsubscribe-go").disabled = true;
      try {
        await post(`/api/unsubscribe?token=${encodeURIComponent(unsubscribe)}`, {});
        say(T("act.unsubscribe-done"));
        $("unsubscribe-go").hidden = true;
      } catch (e) {
        say(T("act.failed") + e.message);
        $("unsubscribe-go").disabled = false;
      }
    });
  } else {
    say(T("act.no-token"));
  }
})();
