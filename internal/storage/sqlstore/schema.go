package sqlstore

// migrations is the forward-only schema history, one script a version. The
// statements use only types and syntax that SQLite and PostgreSQL read the
// same way (TEXT, BIGINT unix seconds, SMALLINT booleans), so no SQL is
// rewritten between dialects. Never edit a released entry: append one.
var migrations = []string{
	`CREATE TABLE users (
		id TEXT PRIMARY KEY,
		username TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		name TEXT NOT NULL,
		email TEXT NOT NULL,
		email_verified SMALLINT NOT NULL,
		picture TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE clients (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		secret_hash TEXT NOT NULL,
		is_public SMALLINT NOT NULL,
		redirect_uris TEXT NOT NULL,
		grant_types TEXT NOT NULL,
		scopes TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE consents (
		user_id TEXT NOT NULL,
		client_id TEXT NOT NULL,
		scopes TEXT NOT NULL,
		granted_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (user_id, client_id)
	);
	CREATE TABLE grants (
		id TEXT PRIMARY KEY,
		client_id TEXT NOT NULL,
		user_id TEXT NOT NULL,
		scopes TEXT NOT NULL,
		auth_time BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		revoked_at BIGINT NOT NULL
	);
	CREATE INDEX grants_user_client ON grants (user_id, client_id);
	CREATE INDEX grants_expires ON grants (expires_at);
	CREATE TABLE auth_requests (
		id TEXT PRIMARY KEY,
		client_id TEXT NOT NULL,
		redirect_uri TEXT NOT NULL,
		scopes TEXT NOT NULL,
		state TEXT NOT NULL,
		nonce TEXT NOT NULL,
		code_challenge TEXT NOT NULL,
		code_challenge_method TEXT NOT NULL,
		prompt TEXT NOT NULL,
		max_age BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX auth_requests_expires ON auth_requests (expires_at);
	CREATE TABLE auth_codes (
		hash TEXT PRIMARY KEY,
		grant_id TEXT NOT NULL,
		client_id TEXT NOT NULL,
		user_id TEXT NOT NULL,
		redirect_uri TEXT NOT NULL,
		scopes TEXT NOT NULL,
		nonce TEXT NOT NULL,
		code_challenge TEXT NOT NULL,
		code_challenge_method TEXT NOT NULL,
		auth_time BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		used_at BIGINT NOT NULL
	);
	CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
	CREATE TABLE refresh_tokens (
		hash TEXT PRIMARY KEY,
		grant_id TEXT NOT NULL,
		client_id TEXT NOT NULL,
		user_id TEXT NOT NULL,
		scopes TEXT NOT NULL,
		auth_time BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		used_at BIGINT NOT NULL
	);
	CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
	CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
	CREATE TABLE revoked_tokens (
		jti TEXT PRIMARY KEY,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
	CREATE TABLE sessions (
		id_hash TEXT PRIMARY KEY,
		user_id TEXT NOT NULL,
		auth_time BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX sessions_expires ON sessions (expires_at);
	CREATE TABLE signing_keys (
		id TEXT PRIMARY KEY,
		algorithm TEXT NOT NULL,
		private_jwk TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		retired_at BIGINT NOT NULL
	);
	CREATE TABLE secrets (
		name TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);`, // 2: failure counters shared by every node (package ratelimit). Times
	// are unix milliseconds: backoff starts at one second.
	`CREATE TABLE failures (
		key TEXT PRIMARY KEY,
		count BIGINT NOT NULL,
		last_ms BIGINT NOT NULL,
		expires_ms BIGINT NOT NULL
	);
	CREATE INDEX failures_expires ON failures (expires_ms);`, // 3: the audit log, queryable per user and per client.
	`CREATE TABLE audit_events (
		id TEXT PRIMARY KEY,
		at_ms BIGINT NOT NULL,
		type TEXT NOT NULL,
		user_id TEXT NOT NULL,
		client_id TEXT NOT NULL,
		ip TEXT NOT NULL,
		detail TEXT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX audit_events_user ON audit_events (user_id, at_ms);
	CREATE INDEX audit_events_client ON audit_events (client_id, at_ms);
	CREATE INDEX audit_events_at ON audit_events (at_ms);
	CREATE INDEX audit_events_expires ON audit_events (expires_at);`, // 4: device authorization (RFC 8628).
	`CREATE TABLE device_codes (
		hash TEXT PRIMARY KEY,
		user_code TEXT NOT NULL UNIQUE,
		client_id TEXT NOT NULL,
		scopes TEXT NOT NULL,
		poll_interval BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		last_poll_ms BIGINT NOT NULL,
		status TEXT NOT NULL,
		user_id TEXT NOT NULL,
		granted_scopes TEXT NOT NULL,
		auth_time BIGINT NOT NULL,
		used_at BIGINT NOT NULL
	);
	CREATE INDEX device_codes_expires ON device_codes (expires_at);`, // 5: clients that must push their authorization requests (RFC 9126).
	`ALTER TABLE clients ADD COLUMN require_par SMALLINT NOT NULL DEFAULT 0;`,          // 6: dynamically registered clients (RFC 7591, RFC 7592).
	`ALTER TABLE clients ADD COLUMN registration_token_hash TEXT NOT NULL DEFAULT '';`, // 7: clients authenticating with private_key_jwt (RFC 7523), and the
	// single-use values (assertion jtis) that stop replays.
	`ALTER TABLE clients ADD COLUMN auth_method TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
	CREATE TABLE used_once (
		key TEXT PRIMARY KEY,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX used_once_expires ON used_once (expires_at);`, // 8: the scope catalog, editable by operators.
	`CREATE TABLE scopes (
		name TEXT PRIMARY KEY,
		position BIGINT NOT NULL,
		descriptions TEXT NOT NULL,
		sensitive SMALLINT NOT NULL,
		required SMALLINT NOT NULL,
		claims TEXT NOT NULL
	);`, // 9: refresh tokens bound to a DPoP key (RFC 9449).
	`ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';`,             // 10: back-channel logout (OpenID Connect Back-Channel Logout 1.0).
	`ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';`, // 11: authorization requests bound to a DPoP key (RFC 9449 §10) and
	// naming their resources (RFC 8707).
	`ALTER TABLE auth_requests ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
	ALTER TABLE auth_requests ADD COLUMN resources TEXT NOT NULL DEFAULT '';
	ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
	ALTER TABLE auth_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '';`, // 12: pairwise subjects, and the claims request parameter (OpenID
	// Connect Core §8.1, §5.5).
	`ALTER TABLE clients ADD COLUMN pairwise SMALLINT NOT NULL DEFAULT 0;
	ALTER TABLE auth_requests ADD COLUMN claims TEXT NOT NULL DEFAULT '';
	ALTER TABLE auth_codes ADD COLUMN claims TEXT NOT NULL DEFAULT '';`, // 13: sealed secrets of client_secret_jwt clients (RFC 7523).
	`ALTER TABLE clients ADD COLUMN secret_sealed TEXT NOT NULL DEFAULT '';`, // 14: the successor of a rotated refresh token, for retries
	// whose response was lost (rotation grace period).
	`ALTER TABLE refresh_tokens ADD COLUMN next_hash TEXT NOT NULL DEFAULT '';`, // 15: the readiness write probe, one row per node, and the
	// indexes that continuous pruning selects by.
	`CREATE TABLE health_probe (
		node TEXT PRIMARY KEY,
		at_ms BIGINT NOT NULL
	);
	CREATE INDEX refresh_tokens_used ON refresh_tokens (used_at);
	CREATE INDEX grants_revoked ON grants (revoked_at);
	CREATE INDEX grants_created ON grants (created_at);`, // 16: the sector identifier URI of a pairwise client (OpenID
	// Connect Core §8.1).
	`ALTER TABLE clients ADD COLUMN sector_identifier_uri TEXT NOT NULL DEFAULT '';`, // 17: the ID token signing alg of a client (OpenID Connect
	// Registration §2) and its PKCE policy (RFC 9700 §2.1.1).
	`ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN pkce_policy TEXT NOT NULL DEFAULT '';`, // 18: the languages a pushed request asks its pages to speak
	// (OpenID Connect Core §3.1.2.1 ui_locales).
	`ALTER TABLE auth_requests ADD COLUMN ui_locales TEXT NOT NULL DEFAULT '';`, // 19: what a client tells people about itself (RFC 7591 §2),
	// and whether the operator verified it.
	`ALTER TABLE clients ADD COLUMN client_uri TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN logo_uri TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN policy_uri TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN tos_uri TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN verified SMALLINT NOT NULL DEFAULT 0;`, // 20: a one-line explanation of each scope, by language.
	`ALTER TABLE scopes ADD COLUMN explanations TEXT NOT NULL DEFAULT '';`, // 21: attempts counted before they are made (ReserveAttempt):
	// how many of a key's counted attempts are still in flight.
	`ALTER TABLE failures ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;`, // 22: the standard claims of OpenID Connect Core §5.1, and the
	// scopes address and phone (§5.4) in catalogs made before them; a fresh
	// store is seeded with the default catalog, which has them.
	`ALTER TABLE users ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
	INSERT INTO scopes (name, position, descriptions, sensitive, required, claims)
		SELECT 'address', (SELECT MAX(position) FROM scopes) + 1,
			'{"ar":"عنوانك البريدي","en":"Your postal address"}', 0, 0, 'address'
		WHERE EXISTS (SELECT 1 FROM scopes) ON CONFLICT (name) DO NOTHING;
	INSERT INTO scopes (name, position, descriptions, sensitive, required, claims)
		SELECT 'phone', (SELECT MAX(position) FROM scopes) + 1,
			'{"ar":"رقم هاتفك","en":"Your phone number"}', 0, 0, 'phone_number phone_number_verified'
		WHERE EXISTS (SELECT 1 FROM scopes) ON CONFLICT (name) DO NOTHING;
	UPDATE scopes SET claims = 'name family_name given_name middle_name nickname preferred_username website gender birthdate zoneinfo locale updated_at'
		WHERE name = 'profile' AND claims = 'name preferred_username';`, // 23: claims released individually, kept with the grant for
	// userinfo and refreshed ID tokens (OpenID Connect Core §5.5).
	`ALTER TABLE grants ADD COLUMN claims TEXT NOT NULL DEFAULT '';`, // 24: unique confirmed email addresses (in storage.NormalEmail form
	// in email_key, empty while unconfirmed; of confirmed addresses shared
	// before, the oldest account keeps its key), the mail outbox, and
	// single-use emailed links.
	`ALTER TABLE users ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
	UPDATE users SET email_key = lower(trim(email)) WHERE trim(email) <> '' AND email_verified <> 0
		AND id = (SELECT MIN(u.id) FROM users u WHERE u.email_verified <> 0 AND lower(trim(u.email)) = lower(trim(users.email)));
	CREATE UNIQUE INDEX users_email_key ON users (email_key) WHERE email_key <> '';
	CREATE TABLE mail_outbox (
		id TEXT PRIMARY KEY,
		recipient TEXT NOT NULL,
		subject TEXT NOT NULL,
		body TEXT NOT NULL,
		kind TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		attempts BIGINT NOT NULL,
		next_ms BIGINT NOT NULL,
		last_error TEXT NOT NULL,
		lease_ms BIGINT NOT NULL,
		sent_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_ms);
	CREATE INDEX mail_outbox_expires ON mail_outbox (expires_at);
	CREATE TABLE account_tokens (
		hash TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		user_id TEXT NOT NULL,
		email TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		used_at BIGINT NOT NULL
	);
	CREATE INDEX account_tokens_user ON account_tokens (user_id, kind);
	CREATE INDEX account_tokens_expires ON account_tokens (expires_at);`, // 25: second factors: TOTP secrets (sealed), recovery
	// codes (hashed) and passkeys (WebAuthn credential records).
	`CREATE TABLE totp_secrets (
		user_id TEXT PRIMARY KEY,
		secret_sealed TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		confirmed_at BIGINT NOT NULL
	);
	CREATE TABLE recovery_codes (
		user_id TEXT NOT NULL,
		hash TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		used_at BIGINT NOT NULL,
		PRIMARY KEY (user_id, hash)
	);
	CREATE TABLE passkeys (
		id TEXT PRIMARY KEY,
		user_id TEXT NOT NULL,
		name TEXT NOT NULL,
		credential TEXT NOT NULL,
		sign_count BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		last_used_at BIGINT NOT NULL
	);
	CREATE INDEX passkeys_user ON passkeys (user_id, created_at);`, // 26: a user's sessions listed on the Security page.
	`CREATE INDEX sessions_user ON sessions (user_id, created_at);`, // 27: the authentication methods of a sign-in (RFC 8176), kept
	// from the session to the code and the grant, for the ID tokens' amr.
	`ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
	ALTER TABLE auth_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '';
	ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT '';`, // 28: an operator disables a user: no sign-in, no token honoured.
	`ALTER TABLE users ADD COLUMN disabled SMALLINT NOT NULL DEFAULT 0;`, // 29: the authentication methods of the sign-in that approved a
	// device code, for the amr of the device's ID tokens.
	`ALTER TABLE device_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '';`, // 30: when a client last used what a user granted it
	// (refreshes, introspection, userinfo), for Connected apps.
	`ALTER TABLE consents ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;`, // 31: links of local users to their identities at upstream
	// identity providers (package upstream); no upstream token is kept.
	`CREATE TABLE upstream_links (
		upstream TEXT NOT NULL,
		subject TEXT NOT NULL,
		user_id TEXT NOT NULL,
		email TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		last_used_at BIGINT NOT NULL,
		PRIMARY KEY (upstream, subject)
	);
	CREATE UNIQUE INDEX upstream_links_user ON upstream_links (user_id, upstream);`, // 32: step-up: the acr_values of a pending request (OpenID
	// Connect Core §3.1.2.1), and the clients whose users pass a second factor.
	`ALTER TABLE auth_requests ADD COLUMN acr_values TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN second_factor SMALLINT NOT NULL DEFAULT 0;`, // 33: the upstream session (upstream id, sub, sid)
	// a browser session came from, which the upstream's back-channel logout ends.
	`ALTER TABLE sessions ADD COLUMN upstream TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN upstream_subject TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN upstream_sid TEXT NOT NULL DEFAULT '';
	CREATE INDEX sessions_upstream ON sessions (upstream, upstream_subject);`, // 34: upstream identity providers added through the admin API
	// (package upstream), their client secret sealed; and an upstream's
	// links listed by user.
	`CREATE TABLE upstreams (
		id TEXT PRIMARY KEY,
		config TEXT NOT NULL,
		secret_sealed TEXT NOT NULL,
		enabled SMALLINT NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE INDEX upstream_links_upstream ON upstream_links (upstream, user_id);`, // 35: the users who may sign in to the admin console.
	`ALTER TABLE users ADD COLUMN admin SMALLINT NOT NULL DEFAULT 0;`, // 36: clients whose every token request carries a DPoP proof
	// (dpop_bound_access_tokens, RFC 9449 §5.2).
	`ALTER TABLE clients ADD COLUMN dpop_bound SMALLINT NOT NULL DEFAULT 0;`, // 37: initial access tokens of dynamic
	// client registration (RFC 7591 §3), hashed, with their uses.
	`CREATE TABLE initial_access_tokens (
		id TEXT PRIMARY KEY,
		hash TEXT NOT NULL UNIQUE,
		label TEXT NOT NULL,
		created_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		max_uses BIGINT NOT NULL,
		uses BIGINT NOT NULL,
		revoked_at BIGINT NOT NULL
	);`, // 38: usernames unique under storage.UsernameKey (admin, Admin
	// and full-width ａｄｍｉｎ are one name). SQL cannot compute the key:
	// the column starts empty (NULL, which a unique index lets repeat) and
	// Store.fillUsernameKeys fills it, so that users made before, even two
	// whose names differ only in case, never make this migration fail.
	`ALTER TABLE users ADD COLUMN username_key TEXT;
	CREATE UNIQUE INDEX users_username_fold ON users (username_key);`,
}
