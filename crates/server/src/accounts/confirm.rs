//! A sign-in from a browser the account does not trust (right password, and right code when
//! the account has a second factor) gets no session until the browser is confirmed: with a
//! six-digit code sent out of band (e-mail, and SMS when a gateway and a mobile number are
//! there), or by the account's owner approving it from a device the account trusts. The code
//! works once, for 15 minutes, five tries; each wrong code counts as a failed sign-in from an
//! unknown device, which never locks the owner's own devices out.

use subtle::ConstantTimeEq;

use super::model::{Id, SignInResult, User, UserState};
use super::secrets::{Secret, SecretKind, hash_presented, random_id};
use super::signin::{Client, Outcome, SecondStep};
use super::throttle::Gate;
use super::tickets::{DEVICE_TICKET_LIFETIME_MS, DeviceWait, Stage, Ticket};
use super::{AccountError, Accounts, MAX_USER_AGENT_CHARS, Signed, shorten};
use crate::clock::Millis;

/// A new browser waiting for confirmation, as the account's trusted devices see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingDevice {
    /// Handle for approving or refusing it.
    pub id: String,
    /// Its browser and system, in kluis's words.
    pub browser: String,
    /// The address it signs in from.
    pub ip: String,
    /// Roughly where that is.
    pub place: &'static str,
    /// When it asked.
    pub at_ms: Millis,
}

impl Accounts {
    /// Starts confirming a new browser: a ticket, the code sent out of band, the log entry.
    pub(super) async fn confirm_new_device(
        &self,
        user: &User,
        a: &Client<'_>,
        second_factor: bool,
    ) -> Result<Outcome, AccountError> {
        let now = self.clock.now();
        // A bound on the codes one account is sent (mail and SMS cost, and a flood for its
        // owner), whoever knows the password.
        if let Err(ms) = self.throttle.device_codes(user.id) {
            self.log_sign_in(Some(user), a, false, SignInResult::Throttled)?;
            self.flush().await?;
            return Ok(Outcome::Throttled(ms));
        }
        let code = Secret::digits()?;
        let number = super::secrets::two_digit_number()?;
        let mut channels = Vec::new();
        if self.mailer.is_some() && user.email.is_some() {
            channels.push("e-mail");
        }
        if self.sms.is_some() && user.mobile.is_some() {
            channels.push("sms");
        }
        if !self.devices_of(&user.id)?.is_empty() {
            channels.push("device");
        }
        let ticket = Secret::token()?;
        let waiting = Ticket {
            user: user.id,
            known: false,
            device: a.device.cloned(),
            second_factor,
            expires_ms: now.saturating_add(DEVICE_TICKET_LIFETIME_MS),
            tries: 0,
            ip: a.ip,
            user_agent: shorten(a.user_agent, MAX_USER_AGENT_CHARS),
            created_ms: now,
            stage: Stage::Device(DeviceWait {
                pending: hex::encode(random_id()?.get(..8).unwrap_or_default()),
                code: code.hash(SecretKind::DeviceCode),
                channels: channels.clone(),
                number: number.clone(),
                approved_by: None,
                denied: false,
            }),
        };
        self.tickets.insert(ticket.hash(SecretKind::Ticket), waiting, now);
        self.notice_device_code(user, &code, a);
        self.log_sign_in(Some(user), a, false, SignInResult::DeviceConfirmation)?;
        self.flush().await?;
        Ok(Outcome::ConfirmDevice { ticket, channels, number })
    }

    fn device_ticket(&self, presented: &str) -> Option<([u8; 32], Ticket, DeviceWait)> {
        let key = hash_presented(SecretKind::Ticket, presented)?;
        let ticket = self.tickets.get(&key, self.clock.now())?;
        match &ticket.stage {
            Stage::Device(wait) => {
                let wait = wait.clone();
                Some((key, ticket, wait))
            }
            Stage::SecondFactor => None,
        }
    }

    /// Confirms a new browser with the code sent out of band (`step.code`).
    pub async fn confirm_device(&self, step: SecondStep<'_>) -> Result<Outcome, AccountError> {
        let Some((key, ticket, wait)) = self.device_ticket(step.ticket) else { return Ok(Outcome::Failed) };
        let user = self.user(&ticket.user)?;
        let a = Client { ip: step.ip, user_agent: step.user_agent, device: ticket.device.as_ref() };
        if let Err(ms) = self.throttle.ip(step.ip) {
            self.log_sign_in(Some(&user), &a, false, SignInResult::Throttled)?;
            return Ok(Outcome::Throttled(ms));
        }
        let (decision, _) = self.reserve_failure(&user, false)?;
        if decision == Gate::Locked {
            self.tickets.remove(&key);
        }
        if let Some(out) = self.gated(Some(&user), &a, false, decision)? {
            return Ok(out);
        }
        let right = hash_presented(SecretKind::DeviceCode, step.code).is_some_and(|h| bool::from(h.ct_eq(&wait.code)));
        if !right || user.state != UserState::Active {
            self.tickets.fail(&key);
            self.log_sign_in(Some(&user), &a, false, SignInResult::Failed)?;
            self.flush().await?;
            return Ok(Outcome::Failed);
        }
        // Taken out atomically: two requests with the right code get one session.
        if self.tickets.take(&key, self.clock.now()).is_none() {
            return Ok(Outcome::Failed);
        }
        let by = format!(
            "code by {}",
            wait.channels.iter().filter(|c| **c != "device").copied().collect::<Vec<_>>().join(" or ")
        );
        self.finish_confirmed(user, &ticket, &by, &a, step.old_session).await
    }

    /// A new browser asks whether a trusted device has approved it yet.
    pub async fn await_device(
        &self,
        presented: &str,
        ip: std::net::IpAddr,
        user_agent: &str,
        old_session: Option<&str>,
    ) -> Result<Outcome, AccountError> {
        let Some((key, ticket, wait)) = self.device_ticket(presented) else { return Ok(Outcome::Failed) };
        let user = self.user(&ticket.user)?;
        let a = Client { ip, user_agent, device: ticket.device.as_ref() };
        if wait.denied {
            self.tickets.remove(&key);
            self.log_sign_in(Some(&user), &a, false, SignInResult::DeviceDenied)?;
            self.flush().await?;
            return Ok(Outcome::Denied);
        }
        let Some(by) = wait.approved_by else { return Ok(Outcome::Waiting) };
        if self.tickets.take(&key, self.clock.now()).is_none() || user.state != UserState::Active {
            return Ok(Outcome::Failed);
        }
        self.finish_confirmed(user, &ticket, &format!("device {by}"), &a, old_session).await
    }

    /// The browser is confirmed: it becomes a trusted device (when it proved a key), the
    /// failure counts clear, and the session starts.
    async fn finish_confirmed(
        &self,
        user: User,
        ticket: &Ticket,
        confirmed_by: &str,
        a: &Client<'_>,
        old_session: Option<&str>,
    ) -> Result<Outcome, AccountError> {
        if let Some(d) = &ticket.device {
            let device = self.trust_device(&user, d, &ticket.user_agent, confirmed_by)?;
            self.notice_new_device(&user, &device, a.ip);
        }
        // Confirmed out of band: the failure counts of every kind clear.
        let user = self.succeed(&user, true, None)?;
        self.finish_sign_in(user, a, false, ticket.second_factor, old_session).await
    }

    /// The user's new browsers waiting for confirmation.
    pub fn pending_devices(&self, user: &Id) -> Vec<PendingDevice> {
        self.tickets
            .pending_of(user, self.clock.now())
            .into_iter()
            .map(|(wait, t)| PendingDevice {
                id: wait.pending,
                browser: super::agent::describe(&t.user_agent),
                ip: t.ip.to_string(),
                place: super::agent::place(t.ip),
                at_ms: t.created_ms,
            })
            .collect()
    }

    /// Approves a new browser of the signed-in user with the number it shows (`Some`), or
    /// refuses it (`None`), from a session on a device the account still trusts. A wrong number
    /// refuses it too. A refusal is announced to the user.
    pub async fn decide_device(
        &self,
        signed: &Signed,
        pending: &str,
        number: Option<&str>,
    ) -> Result<(), AccountError> {
        let device = signed.session.device.clone().filter(|d| self.device_entry(&signed.user.id, d).is_ok());
        let Some(device) = device else {
            return Err(AccountError::Invalid("approve new browsers from a browser this account trusts"));
        };
        let approval = number.map(|n| (device, n));
        match self.tickets.decide(&signed.user.id, pending, approval, self.clock.now()) {
            None => Err(AccountError::NotFound),
            Some(true) => Ok(()),
            Some(false) => {
                self.notice_security_change(
                    &signed.user,
                    "A new browser was refused for your kluis account",
                    "A browser that signed in to your kluis account with the right password was refused from one of\n\
                     your trusted browsers. If that was not you, change your password now: someone knows it.",
                );
                if number.is_some() {
                    Err(AccountError::Invalid(
                        "that is not the number the new browser shows: it was refused (it can sign in again)",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}
