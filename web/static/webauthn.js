// keygate's WebAuthn glue. It turns the server's ceremony options into
// navigator.credentials calls and posts the browser's answers back; the
// server decides everything. There is no inline script: buttons carry what
// they need in data- attributes (data-webauthn, data-csrf, data-flow).
(function () {
  "use strict";

  function decode(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function encode(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(pk) {
    pk.challenge = decode(pk.challenge);
    pk.user.id = decode(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = decode(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return pk;
  }

  // credentialJSON follows the WebAuthn Level 3 JSON shape that the server
  // parses; toJSON() produces it where the browser has it.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    const r = cred.response;
    const out = {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: { clientDataJSON: encode(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      if (r.userHandle) out.response.userHandle = encode(r.userHandle);
    }
    return out;
  }

  async function post(url, csrf, body) {
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    });
    let data = {};
    try { data = await resp.json(); } catch (e) { /* an empty or HTML body */ }
    if (!resp.ok) throw new Error(data.error || "The server refused the request (" + resp.status + ").");
    return data;
  }

  function showError(message) {
    const el = document.getElementById("webauthn-error");
    if (!el) return;
    el.textContent = message;
    el.hidden = false;
  }

  // friendly says what a browser error means for the user.
  function friendly(err) {
    switch (err && err.name) {
      case "NotAllowedError": return "The request was cancelled or timed out. Try again.";
      case "InvalidStateError": return "This key is registered already.";
      case "SecurityError": return "This page's address may not use your key.";
      case "AbortError": return "";
      case "NotSupportedError": return "This key cannot be used here.";
    }
    return (err && err.message) || "Something went wrong. Try again.";
  }

  async function register(btn) {
    const csrf = btn.dataset.csrf;
    const begin = await post("/mfa/webauthn/register/begin", csrf, {});
    const cred = await navigator.credentials.create({ publicKey: creationOptions(begin.options.publicKey) });
    const nameInput = btn.dataset.nameInput && document.getElementById(btn.dataset.nameInput);
    const name = nameInput ? nameInput.value : "";
    const done = await post("/mfa/webauthn/register/finish?challenge=" + encodeURIComponent(begin.challenge) +
      "&name=" + encodeURIComponent(name), csrf, credentialJSON(cred));
    if (done.recovery_codes && done.recovery_codes.length) {
      const list = document.getElementById("recovery-codes");
      done.recovery_codes.forEach(function (c) {
        const li = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = c;
        li.appendChild(code);
        list.appendChild(li);
      });
      document.getElementById("recovery-continue").href = done.next;
      document.getElementById("recovery-section").hidden = false;
      btn.hidden = true;
      return;
    }
    window.location.assign(done.next);
  }

  // sign runs an assertion: "assert" after a password, "passwordless"
  // with a discoverable passkey alone.
  async function sign(btn, kind, mediation, signal) {
    const csrf = btn.dataset.csrf;
    const begin = await post("/mfa/webauthn/" + kind + "/begin", csrf, { flow: btn.dataset.flow });
    const opts = { publicKey: requestOptions(begin.options.publicKey) };
    if (mediation) opts.mediation = mediation;
    if (signal) opts.signal = signal;
    const cred = await navigator.credentials.get(opts);
    const done = await post("/mfa/webauthn/" + kind + "/finish?challenge=" + encodeURIComponent(begin.challenge),
      csrf, credentialJSON(cred));
    window.location.assign(done.next);
  }

  let conditional = null; // the pending autofill request on the sign-in page

  function start(btn) {
    if (conditional) { conditional.abort(); conditional = null; }
    btn.disabled = true;
    const kind = btn.dataset.webauthn;
    const run = kind === "register" ? register(btn) : sign(btn, kind);
    run.catch(function (err) {
      const msg = friendly(err);
      if (msg) showError(msg);
    }).finally(function () { btn.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const buttons = document.querySelectorAll("[data-webauthn]");
    if (!buttons.length) return;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      buttons.forEach(function (b) { b.disabled = true; });
      showError("This browser cannot use security keys or passkeys. Use another browser, or an authenticator app code where allowed.");
      return;
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { start(b); });
    });
    // Offer passkeys in the email field's autofill where the browser can.
    const passkey = document.querySelector('[data-webauthn="passwordless"]');
    if (passkey && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        conditional = new AbortController();
        sign(passkey, "passwordless", "conditional", conditional.signal).catch(function (err) {
          const msg = friendly(err);
          if (msg && err.name !== "NotAllowedError") showError(msg);
        });
      });
    }
  });
})();
