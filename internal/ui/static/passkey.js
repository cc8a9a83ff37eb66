// Passkeys (W3C Web Authentication): registration on the Security page
// and sign-in on the login page. The server sends the options as JSON
// with binary fields in base64url and reads the response the same way
// (PublicKeyCredential.toJSON), posted as a form with the CSRF token.
(function () {
  'use strict';
  if (!window.PublicKeyCredential) {
    return;
  }
  function enc(buf) {
    var s = '';
    var bytes = new Uint8Array(buf);
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function dec(str) {
    str = str.replace(/-/g, '+').replace(/_/g, '/');
    while (str.length % 4) str += '=';
    var bin = atob(str);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function credentialJSON(c) {
    var r = c.response;
    var out = {id: c.id, rawId: enc(c.rawId), type: c.type, clientExtensionResults: c.getClientExtensionResults(),
      authenticatorAttachment: c.authenticatorAttachment || undefined, response: {clientDataJSON: enc(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) out.response.userHandle = enc(r.userHandle);
    }
    return JSON.stringify(out);
  }
  function post(url, fields) {
    return fetch(url, {method: 'POST', credentials: 'same-origin', body: new URLSearchParams(fields)}).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.message || res.statusText);
        return body;
      });
    });
  }
  function show(el, msg) {
    if (!el) return;
    el.textContent = msg;
    el.hidden = false;
  }
  function field(form, name) {
    var el = form && form.querySelector('input[name="' + name + '"]');
    return el ? el.value : '';
  }

  // Registration on the Security page.
  var add = document.getElementById('passkey-add');
  if (add) {
    add.hidden = false;
    add.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var csrf = field(add, 'csrf_token');
      var err = document.getElementById('passkey-error');
      post('/account/security/passkeys/begin', {csrf_token: csrf}).then(function (opts) {
        var pk = opts.publicKey;
        pk.challenge = dec(pk.challenge);
        pk.user.id = dec(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
        return navigator.credentials.create({publicKey: pk});
      }).then(function (cred) {
        return post('/account/security/passkeys/finish', {csrf_token: csrf, name: field(add, 'name'), credential: credentialJSON(cred)});
      }).then(function (ans) {
        window.location.assign(ans.next);
      }).catch(function (e) {
        show(err, (e && e.message) || String(e));
      });
    });
  }

  // A passkey as the second step of a sign-in: the page carries the
  // options; the response goes back with the form.
  var second = document.getElementById('factor-passkey');
  if (second) {
    second.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var pk = JSON.parse(second.dataset.options).publicKey;
      pk.challenge = dec(pk.challenge);
      (pk.allowCredentials || []).forEach(function (c) { c.id = dec(c.id); });
      navigator.credentials.get({publicKey: pk}).then(function (cred) {
        second.querySelector('input[name="credential"]').value = credentialJSON(cred);
        second.submit();
      }).catch(function (e) {
        show(document.getElementById('passkey-error'), (e && e.message) || String(e));
      });
    });
  }

  // Sign-in on the login page: a button, and the browser's own offer in
  // the user name field where it supports conditional mediation.
  var login = document.getElementById('passkey-login');
  if (login) {
    var form = document.querySelector('form[action="/login"]');
    var err = document.getElementById('passkey-error');
    var pending = null;
    var begin = function () {
      return post('/login/passkey/begin', {csrf_token: field(form, 'csrf_token')});
    };
    var signIn = function (opts, conditional) {
      if (pending) pending.abort();
      var ctl = new AbortController();
      pending = ctl;
      var pk = opts.publicKey;
      pk.challenge = dec(pk.challenge);
      (pk.allowCredentials || []).forEach(function (c) { c.id = dec(c.id); });
      var req = {publicKey: pk, signal: ctl.signal};
      if (conditional) req.mediation = 'conditional';
      return navigator.credentials.get(req).then(function (cred) {
        return post('/login/passkey/finish', {csrf_token: field(form, 'csrf_token'), req: field(form, 'req'),
          ui_locales: field(form, 'ui_locales'), credential: credentialJSON(cred)});
      }).then(function (ans) {
        window.location.assign(ans.next);
      }).catch(function (e) {
        if (e && e.name === 'AbortError') return;
        show(err, (e && e.message) || String(e));
      });
    };
    login.addEventListener('click', function () {
      begin().then(function (opts) { return signIn(opts, false); }).catch(function (e) { show(err, (e && e.message) || String(e)); });
    });
    // The first options say whether this server offers passkeys at all;
    // the button shows only if it does.
    var conditional = PublicKeyCredential.isConditionalMediationAvailable ?
      PublicKeyCredential.isConditionalMediationAvailable() : Promise.resolve(false);
    Promise.all([begin(), conditional]).then(function (r) {
      if (r[0].off) return;
      login.hidden = false;
      if (r[1]) signIn(r[0], true);
    }).catch(function () {});
  }
})();
