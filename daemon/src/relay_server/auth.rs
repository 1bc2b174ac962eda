//! Secrets: checking them fast, registering ids without letting anyone take one over.
//!
//! A secret is stored only as an argon2id hash (8 MiB, 2 passes: tens of milliseconds, so a
//! stolen store is costly to brute-force while registration stays quick). Running argon2 on
//! every `/send` would cap the relay at a few hundred messages per second, so once a secret has
//! been verified, `sha256(process salt ‖ id ‖ 0 ‖ secret)` is remembered in memory for that
//! account, and later requests compare digests in constant time. The salt is random per
//! process; the cache is never written anywhere. Cache misses (and registrations) run argon2 on
//! the relay's own small thread pool ([`super::hasher`], which sheds load with 503) and count
//! against the per-client `--auth-rate`, loopback included.
//!
//! **One argon2 run per request at most.** A request may carry several readings of its secret
//! (bearer header, and the lenient readings of an unencoded query value, see
//! [`super::query`]); all of them are compared with the cached digest, which is cheap, but only
//! the first one is ever run through argon2. A client whose unencoded query secret reads
//! differently when percent-decoded (it contains `%XX`) is therefore recognised only once its
//! secret is cached (after its registration or a body-authenticated `/send`, until a restart),
//! or when it sends the secret as `Authorization: Bearer` (clawlinkd does).
//!
//! Two registrations of one new id race safely: the store creates the record with a
//! compare-and-swap, and the loser is checked against the winner's hash (same secret: 201,
//! otherwise 409).

use super::error::ApiError;
use super::state::{lock, Account, Relay};
use crate::store::relay_server::AccountRecord;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(8 * 1024, 2, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

impl Relay {
    fn digest(&self, id: &str, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(id.as_bytes());
        h.update([0]);
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    /// Runs argon2 verification of `candidate` against `hash` (one run).
    async fn verify_slow(
        &self,
        hash: &str,
        candidate: &str,
        peer: IpAddr,
    ) -> Result<bool, ApiError> {
        self.limits.expensive(peer)?;
        let hash = hash.to_string();
        let candidate = candidate.to_string();
        self.hasher
            .run(move || {
                PasswordHash::new(&hash).is_ok_and(|parsed| {
                    argon2()
                        .verify_password(candidate.as_bytes(), &parsed)
                        .is_ok()
                })
            })
            .await
    }

    /// The account `id` if one of `candidates` is its secret; 401 otherwise.
    pub async fn authenticate(
        &self,
        id: &str,
        candidates: &[String],
        peer: IpAddr,
    ) -> Result<Arc<Account>, ApiError> {
        let account = self.account(id).await?.ok_or_else(ApiError::unauthorized)?;
        let Some(first) = candidates.first() else {
            return Err(ApiError::unauthorized());
        };
        let known = *lock(&account.verified);
        if let Some(known) = known {
            for c in candidates {
                if crate::http::secret_eq(&known, &self.digest(id, c)) {
                    return Ok(account);
                }
            }
        }
        if self.verify_slow(&account.hash, first, peer).await? {
            *lock(&account.verified) = Some(self.digest(id, first));
            Ok(account)
        } else {
            Err(ApiError::unauthorized())
        }
    }

    /// Registers `id`, or confirms a registration made with the same secret (renaming it to
    /// `name`). Another secret gets 409 and changes nothing.
    pub async fn register(
        &self,
        id: &str,
        name: &str,
        secret: &str,
        peer: IpAddr,
    ) -> Result<Arc<Account>, ApiError> {
        let taken = || {
            ApiError::new(
                StatusCode::CONFLICT,
                "this id is already registered with another secret",
            )
        };
        let candidates = [secret.to_string()];
        let account = match self.account(id).await? {
            Some(_) => self
                .authenticate(id, &candidates, peer)
                .await
                .map_err(|e| {
                    if e.status() == StatusCode::UNAUTHORIZED {
                        taken()
                    } else {
                        e
                    }
                })?,
            None => {
                self.limits.register(peer)?;
                self.limits.expensive(peer)?;
                let owned = secret.to_string();
                let hash = self
                    .hasher
                    .run(move || {
                        let salt = SaltString::generate(&mut rand::rngs::OsRng);
                        argon2()
                            .hash_password(owned.as_bytes(), &salt)
                            .map(|h| h.to_string())
                    })
                    .await?
                    .map_err(ApiError::internal)?;
                let rec = AccountRecord {
                    name: name.to_string(),
                    secret_hash: hash,
                    created_ms: crate::time::now_ms(),
                };
                let rec = match self.store.create_account(id, &rec).await? {
                    None => rec,
                    Some(existing) => {
                        // Lost a race with another registration of the same id.
                        if !self
                            .verify_slow(&existing.secret_hash, secret, peer)
                            .await?
                        {
                            return Err(taken());
                        }
                        existing
                    }
                };
                let account = Arc::clone(
                    lock(&self.accounts)
                        .entry(id.to_string())
                        .or_insert_with(|| Arc::new(Account::new(id.to_string(), rec))),
                );
                *lock(&account.verified) = Some(self.digest(id, secret));
                account
            }
        };
        if account.name() != name {
            let rec = AccountRecord {
                name: name.to_string(),
                secret_hash: account.hash.clone(),
                created_ms: account.created_ms,
            };
            self.store.put_account(id, &rec).await?;
            *lock(&account.name) = name.to_string();
        }
        self.store.durable().await?;
        Ok(account)
    }
}
