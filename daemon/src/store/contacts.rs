//! Contacts: `contacts` tree, name → JSON record with the token as a [`Secret`].
//!
//! The token leaves this module only through [`Contact::token`], for the transport that
//! presents it to the contact's gateway. Listings use [`Contact::view`], which redacts it.

use super::{decode, encode, Db, Result};
use clawlink::proto::{ContactView, NewContact};
use clawlink::Secret;
use serde::{Deserialize, Serialize};

/// A stored contact.
#[derive(Clone, Serialize, Deserialize)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Gateway URL or `relay://` address.
    pub url: String,
    /// Token (secret).
    pub token: Secret,
    /// Description.
    pub desc: String,
    /// When added (ms since epoch).
    pub added_ms: u64,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contact")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &self.token)
            .finish()
    }
}

impl Contact {
    /// The listing form, token redacted.
    pub fn view(&self) -> ContactView {
        ContactView {
            name: self.name.clone(),
            url: self.url.clone(),
            token: self.token.redacted().to_string(),
            desc: self.desc.clone(),
            added_at: crate::time::rfc3339(self.added_ms),
        }
    }
}

/// Handle to the contacts tree.
#[derive(Clone)]
pub struct Contacts {
    tree: sled::Tree,
}

impl Contacts {
    /// Opens the tree.
    pub fn open(db: &Db) -> Result<Contacts> {
        Ok(Contacts {
            tree: db.tree("contacts")?,
        })
    }

    /// Adds or replaces a contact (validated by the caller).
    pub fn put(&self, c: NewContact) -> Result<Contact> {
        let contact = Contact {
            name: c.name,
            url: c.url,
            token: c.token,
            desc: c.desc,
            // An imported contact keeps when it was first added (the seed's `addedAt`).
            added_ms: c
                .added_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or_else(crate::time::now_ms, |d| d.as_millis() as u64),
        };
        self.tree
            .insert(contact.name.as_bytes(), encode(&contact)?)?;
        Ok(contact)
    }

    /// One contact by name.
    pub fn get(&self, name: &str) -> Result<Option<Contact>> {
        self.tree
            .get(name.as_bytes())?
            .map(|v| decode("contacts", &v))
            .transpose()
    }

    /// All contacts, by name.
    pub fn list(&self) -> Result<Vec<Contact>> {
        self.tree
            .iter()
            .map(|r| {
                r.map_err(Into::into)
                    .and_then(|(_, v)| decode("contacts", &v))
            })
            .collect()
    }

    /// Removes a contact; whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool> {
        Ok(self.tree.remove(name.as_bytes())?.is_some())
    }
}
