//! Sign-ins waiting for their next step (a second-factor code, or the confirmation of a new
//! browser), in memory only: a restart asks for the password again. The key is the hash of the
//! ticket cookie, which changes at every step.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;

use super::devices::DeviceKey;
use super::model::Id;
use crate::clock::Millis;

/// How long a sign-in waits for its second factor after the password, ms.
pub const TICKET_LIFETIME_MS: Millis = 5 * 60 * 1000;
/// How long a sign-in from a new browser waits for its confirmation (the code's lifetime), ms.
pub const DEVICE_TICKET_LIFETIME_MS: Millis = 15 * 60 * 1000;
/// Wrong codes one ticket takes before it ends (each also counts as a failed sign-in of the
/// account, so the account's back-off applies as well).
pub const MAX_TICKET_TRIES: u32 = 5;
/// New browsers of one account waiting for confirmation at once; a further one replaces the
/// oldest (so a stranger with the password cannot pile up approval requests).
pub const MAX_PENDING_DEVICES: usize = 3;

/// A sign-in waiting for its next step.
#[derive(Clone)]
pub(super) struct Ticket {
    pub(super) user: Id,
    /// Whether the browser proved a device key this account trusts.
    pub(super) known: bool,
    /// The device key it proved, if any.
    pub(super) device: Option<DeviceKey>,
    /// Whether the second factor was passed on the way here.
    pub(super) second_factor: bool,
    pub(super) expires_ms: Millis,
    pub(super) tries: u32,
    pub(super) ip: IpAddr,
    pub(super) user_agent: String,
    pub(super) created_ms: Millis,
    pub(super) stage: Stage,
}

/// What a ticket waits for.
#[derive(Clone)]
pub(super) enum Stage {
    /// A TOTP code or a recovery code.
    SecondFactor,
    /// The confirmation of a new browser.
    Device(DeviceWait),
}

/// A new browser waiting for its code or an approval.
#[derive(Clone)]
pub(super) struct DeviceWait {
    /// Public handle, shown on the trusted devices that may approve it.
    pub(super) pending: String,
    /// The hash of the one-time code sent out of band.
    pub(super) code: [u8; 32],
    /// Where the code went: `e-mail`, `sms`; and `device` when a trusted device can approve.
    pub(super) channels: Vec<&'static str>,
    /// The two-digit number the new browser shows, which its approver must type (so that a
    /// stranger's waiting sign-in is not let in by a reflex).
    pub(super) number: String,
    /// The trusted device that approved it.
    pub(super) approved_by: Option<String>,
    /// Whether a trusted device refused it.
    pub(super) denied: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match &self.stage {
            Stage::SecondFactor => "second-factor",
            Stage::Device(_) => "device",
        };
        f.debug_struct("Ticket").field("user", &self.user).field("stage", &stage).finish_non_exhaustive()
    }
}

/// The tickets.
#[derive(Debug, Default)]
pub(super) struct Tickets(Mutex<HashMap<[u8; 32], Ticket>>);

impl Tickets {
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Ticket>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a ticket, dropping the expired ones, and the oldest device confirmation of the
    /// same user beyond [`MAX_PENDING_DEVICES`].
    pub(super) fn insert(&self, key: [u8; 32], ticket: Ticket, now: Millis) {
        let mut t = self.lock();
        t.retain(|_, w| w.expires_ms > now);
        if matches!(ticket.stage, Stage::Device(_)) {
            let mut waiting: Vec<([u8; 32], Millis)> = t
                .iter()
                .filter(|(_, w)| w.user == ticket.user && matches!(w.stage, Stage::Device(_)))
                .map(|(k, w)| (*k, w.created_ms))
                .collect();
            waiting.sort_by_key(|(_, at)| *at);
            while waiting.len() >= MAX_PENDING_DEVICES {
                let (oldest, _) = waiting.remove(0);
                t.remove(&oldest);
            }
        }
        t.insert(key, ticket);
    }

    /// A live ticket.
    pub(super) fn get(&self, key: &[u8; 32], now: Millis) -> Option<Ticket> {
        let mut t = self.lock();
        match t.get(key) {
            Some(w) if w.expires_ms > now => Some(w.clone()),
            Some(_) => {
                t.remove(key);
                None
            }
            None => None,
        }
    }

    /// Takes a live ticket out, once: of two requests with the same ticket, one gets it.
    pub(super) fn take(&self, key: &[u8; 32], now: Millis) -> Option<Ticket> {
        self.lock().remove(key).filter(|w| w.expires_ms > now)
    }

    /// Counts a wrong code; the ticket ends at the limit.
    pub(super) fn fail(&self, key: &[u8; 32]) {
        let mut t = self.lock();
        if let Some(w) = t.get_mut(key) {
            w.tries = w.tries.saturating_add(1);
            if w.tries >= MAX_TICKET_TRIES {
                t.remove(key);
            }
        }
    }

    /// Ends a ticket.
    pub(super) fn remove(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }

    /// Ends every ticket of a user (their second factor or password was reset, or the account
    /// disabled: a sign-in under way must start again).
    pub(super) fn remove_user(&self, user: &Id) {
        self.lock().retain(|_, w| w.user != *user);
    }

    /// Ends the sign-ins under way on a device that was removed, and the approvals it gave.
    pub(super) fn remove_device(&self, user: &Id, device: &str) {
        self.lock().retain(|_, w| {
            let on_it = w.device.as_ref().is_some_and(|d| d.id() == device);
            let approved_by_it = matches!(&w.stage, Stage::Device(d) if d.approved_by.as_deref() == Some(device));
            w.user != *user || !(on_it || approved_by_it)
        });
    }

    /// The user's new browsers waiting for confirmation, oldest first.
    pub(super) fn pending_of(&self, user: &Id, now: Millis) -> Vec<(DeviceWait, Ticket)> {
        let t = self.lock();
        let mut out: Vec<(DeviceWait, Ticket)> = t
            .values()
            .filter(|w| w.user == *user && w.expires_ms > now)
            .filter_map(|w| match &w.stage {
                Stage::Device(d) if !d.denied && d.approved_by.is_none() => Some((d.clone(), w.clone())),
                _ => None,
            })
            .collect();
        out.sort_by_key(|(_, w)| w.created_ms);
        out
    }

    /// Approves (`Some((device, number))`, when `number` is the one the new browser shows) or
    /// refuses (`None`) the user's new browser `pending`. A wrong number refuses it. `None` when
    /// no such browser waits; else whether it was let in.
    pub(super) fn decide(
        &self,
        user: &Id,
        pending: &str,
        approval: Option<(String, &str)>,
        now: Millis,
    ) -> Option<bool> {
        let mut t = self.lock();
        for w in t.values_mut() {
            if w.user != *user || w.expires_ms <= now {
                continue;
            }
            if let Stage::Device(d) = &mut w.stage {
                if d.pending == pending && !d.denied && d.approved_by.is_none() {
                    return Some(match approval {
                        Some((by, number)) if bool::from(d.number.as_bytes().ct_eq(number.trim().as_bytes())) => {
                            d.approved_by = Some(by);
                            true
                        }
                        _ => {
                            d.denied = true;
                            false
                        }
                    });
                }
            }
        }
        None
    }
}
