//! What the accounts store holds (FORMAT.md §9.2): JSON values in sled, one tree per kind.
//! Every value carries no secret in the clear: passwords are Argon2id PHC strings, and codes,
//! session tokens and link tokens are stored only as their SHA-256 (the tree's key).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// A 16-byte random id (users, practices), written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub [u8; 16]);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

impl Id {
    /// Parses 32 hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(Id(b))
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse(&s).ok_or_else(|| serde::de::Error::custom("an id is 32 hex digits"))
    }
}

/// What a user may do. Roles are a set per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Keeps client records: owns a notes vault and an identities vault.
    Practitioner,
    /// Runs a practice: invites users, sets its policy. Reaches no records by this role.
    Admin,
    /// The operator's support staff, in no practice. Reaches no records, ever.
    Support,
}

impl Role {
    /// Parses `practitioner`, `admin` or `support`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "practitioner" => Some(Role::Practitioner),
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            _ => None,
        }
    }
}

/// A practice's rules for its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Minutes without user activity after which a session ends (default 15).
    pub idle_minutes: u32,
    /// Hours after sign-in at which a session ends whatever happens (default 12).
    pub absolute_hours: u32,
    /// Shortest password (NIST SP 800-63B-4: 15 without a second factor, 8 with one).
    pub min_password_chars: u32,
    /// Whether every user must have a second factor.
    pub second_factor_required: bool,
    /// HIPAA mode: a second factor for everyone, an idle time of at most 30 minutes (after which
    /// the app signs out and wipes its keys), and a notice of every sign-in.
    #[serde(default)]
    pub hipaa_mode: bool,
}

/// The longest idle time in HIPAA mode, minutes.
pub const HIPAA_MAX_IDLE_MINUTES: u32 = 30;

/// Idle timeout by default, minutes (security-anchors §2.4: clinical workstations).
pub const DEFAULT_IDLE_MINUTES: u32 = 15;
/// The idle timeouts a practice may choose, minutes (HIPAA mode allows at most 30).
pub const IDLE_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 1..=60;
/// The absolute session lifetimes a practice may choose, hours.
pub const ABSOLUTE_HOURS_RANGE: std::ops::RangeInclusive<u32> = 1..=24;
/// The highest minimum password length a practice may set.
pub const MAX_MIN_PASSWORD_CHARS: u32 = 64;
/// Absolute session lifetime by default, hours (NIST AAL2).
pub const DEFAULT_ABSOLUTE_HOURS: u32 = 12;

impl Policy {
    /// Refuses a policy outside the limits above.
    pub fn check(&self) -> Result<(), super::AccountError> {
        use super::AccountError::Invalid;
        if !IDLE_MINUTES_RANGE.contains(&self.idle_minutes) {
            return Err(Invalid("the idle time is 1 to 60 minutes"));
        }
        if !ABSOLUTE_HOURS_RANGE.contains(&self.absolute_hours) {
            return Err(Invalid("the longest session is 1 to 24 hours"));
        }
        if self.min_password_chars > MAX_MIN_PASSWORD_CHARS {
            return Err(Invalid("a minimum password length is at most 64"));
        }
        if self.hipaa_mode && self.idle_minutes > HIPAA_MAX_IDLE_MINUTES {
            return Err(Invalid("in HIPAA mode the idle time is at most 30 minutes"));
        }
        Ok(())
    }

    /// Whether users need a second factor (asked for, or implied by HIPAA mode).
    pub fn requires_second_factor(&self) -> bool {
        self.second_factor_required || self.hipaa_mode
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            idle_minutes: DEFAULT_IDLE_MINUTES,
            absolute_hours: DEFAULT_ABSOLUTE_HOURS,
            min_password_chars: 0,
            second_factor_required: false,
            hipaa_mode: false,
        }
    }
}

/// A practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Practice {
    /// Its id.
    pub id: Id,
    /// Its name as given.
    pub name: String,
    /// When it was created.
    pub created_ms: Millis,
    /// Its policy.
    pub policy: Policy,
}

/// Where a user is in their life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserState {
    /// Invited, not yet enrolled: cannot sign in.
    Invited,
    /// Enrolled.
    Active,
    /// Disabled by an admin: cannot sign in, has no sessions.
    Disabled,
    /// Purged by the operator: only this record is left (id, username, practice, roles), until
    /// the account is transferred to a new person.
    Purged,
}

/// Consecutive failed sign-ins, counted apart for the account's trusted devices (whose keys an
/// attacker elsewhere cannot use) and for everything else, so an attacker's failures never lock
/// the owner's own devices out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failures {
    /// From devices this account does not trust.
    pub unknown: u32,
    /// From this account's trusted devices.
    pub known: u32,
    /// Time of the last failure from an unknown device.
    pub unknown_last_ms: Millis,
    /// Time of the last failure from a trusted device (kept apart, so an attacker's failures
    /// never extend the owner's back-off).
    pub known_last_ms: Millis,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Its id.
    pub id: Id,
    /// The username as chosen (its comparison key is unique).
    pub username: String,
    /// The practice, or none for the operator's support staff.
    pub practice: Option<Id>,
    /// What the user may do.
    pub roles: BTreeSet<Role>,
    /// Where the user is in their life cycle.
    pub state: UserState,
    /// Argon2id PHC string, once enrolled.
    pub password: Option<String>,
    /// E-mail address for notifications and device confirmation, once enrolled.
    pub email: Option<String>,
    /// Mobile number, optional.
    pub mobile: Option<String>,
    /// When the account was created.
    pub created_ms: Millis,
    /// Consecutive failed sign-ins.
    pub failures: Failures,
    /// The public key of the practitioner's key file (`kluispub1…`), registered by the app on
    /// first unlock; later unlocks are checked against it.
    #[serde(default)]
    pub vault_public_key: Option<String>,
    /// The second factor, once set up and confirmed.
    #[serde(default)]
    pub second_factor: Option<SecondFactor>,
    /// A TOTP set-up begun and not yet confirmed with a code.
    #[serde(default)]
    pub pending_totp: Option<PendingTotp>,
    /// Which optional notices the user wants.
    #[serde(default)]
    pub notifications: Notifications,
    /// Set by a second-factor reset: the user must set a new second factor up before anything
    /// else, whatever the practice's policy; cleared when one is turned on (FORMAT.md §9.2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub second_factor_due: bool,
}

/// The optional notices a user may turn off (the security notices, such as codes, links and
/// changes to the account's protection, are always sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// A notice when a new browser is confirmed for the account (default on).
    pub new_device: bool,
    /// A notice of every sign-in (default off; always sent in HIPAA mode).
    pub every_sign_in: bool,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications { new_device: true, every_sign_in: false }
    }
}

/// The kinds of optional notice, as named in unsubscribe links and the preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// A new browser was confirmed.
    NewDevice,
    /// A sign-in happened.
    EverySignIn,
}

impl Notifications {
    /// Whether the user wants notices of `kind`.
    pub fn wants(&self, kind: NoticeKind) -> bool {
        match kind {
            NoticeKind::NewDevice => self.new_device,
            NoticeKind::EverySignIn => self.every_sign_in,
        }
    }

    /// Turns notices of `kind` off.
    pub fn turn_off(&mut self, kind: NoticeKind) {
        match kind {
            NoticeKind::NewDevice => self.new_device = false,
            NoticeKind::EverySignIn => self.every_sign_in = false,
        }
    }
}

/// A user's second factor (FORMAT.md §9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondFactor {
    /// The TOTP secret, sealed under the server key (FORMAT.md §9.4).
    pub totp: String,
    /// The last TOTP step accepted: codes of this step and earlier are refused (replay).
    pub last_step: u64,
    /// When it was confirmed.
    pub enabled_ms: Millis,
    /// The unused recovery codes, as hex of their hashes.
    pub recovery: Vec<String>,
}

/// A TOTP set-up waiting for its first code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingTotp {
    /// The new TOTP secret, sealed under the server key.
    pub totp: String,
    /// When the set-up lapses.
    pub expires_ms: Millis,
}

/// An outstanding invitation; the tree key is the hash of its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    /// The invited user.
    pub user: Id,
    /// When the code stops working.
    pub expires_ms: Millis,
}

/// A server-side session; the tree key is the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// A public handle for listing and revoking (not the token).
    pub id: String,
    /// Whose session.
    pub user: Id,
    /// When it began.
    pub created_ms: Millis,
    /// Last request the browser marked as caused by user input.
    pub last_active_ms: Millis,
    /// Idle timeout fixed at sign-in from the practice policy.
    pub idle_ms: Millis,
    /// Absolute end.
    pub expires_ms: Millis,
    /// The browser's User-Agent, shortened.
    pub user_agent: String,
    /// The trusted device the session was opened on (its public handle), if any.
    #[serde(default)]
    pub device: Option<String>,
    /// Whether the sign-in passed the user's second factor (or the user set it up in this
    /// session): a session without it ends once the user has a second factor.
    #[serde(default)]
    pub second_factor: bool,
    /// Wrong second-factor codes typed in this session (new recovery codes ask for one); the
    /// session ends at the limit.
    #[serde(default)]
    pub code_failures: u32,
}

/// The outcome of a sign-in attempt, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignInResult {
    /// Signed in.
    Success,
    /// The password was right; the second factor is asked next.
    SecondFactor,
    /// Wrong password, or a username that matches no account.
    Failed,
    /// Refused without checking: back-off in force.
    Throttled,
    /// Refused without checking: too many consecutive failures.
    Locked,
    /// The account is disabled.
    Disabled,
    /// Password (and code) right, from a browser the account does not trust yet: it waits for a
    /// one-time code or an approval from a trusted device.
    DeviceConfirmation,
    /// A trusted device refused to approve the new browser.
    DeviceDenied,
}

/// One sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// When.
    pub at_ms: Millis,
    /// The account, when the username matched one (an unmatched username is not stored: people
    /// type passwords into that field).
    pub user: Option<Id>,
    /// The client's IP address.
    pub ip: String,
    /// Its User-Agent, shortened.
    pub user_agent: String,
    /// Whether it came from a device this account trusts (the name before devices had keys).
    #[serde(alias = "known_browser")]
    pub known_device: bool,
    /// That device's public handle, if it proved one.
    #[serde(default)]
    pub device: Option<String>,
    /// What happened.
    pub result: SignInResult,
}

/// What an identity check before a second-factor reset rested on: the kind only, never the
/// evidence itself (no document numbers, no photographs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// Seen in person, with an identity document.
    InPerson,
    /// Seen on a video call, with an identity document.
    VideoCall,
    /// Called back on the number the practice already had.
    PhoneCallback,
    /// Another way, which the practice documents itself.
    Other,
}

impl Evidence {
    /// Parses `in-person`, `video-call`, `phone-callback` or `other`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in-person" => Some(Evidence::InPerson),
            "video-call" => Some(Evidence::VideoCall),
            "phone-callback" => Some(Evidence::PhoneCallback),
            "other" => Some(Evidence::Other),
            _ => None,
        }
    }
}

/// What a security event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A user's second factor was removed, so that they set up a new one.
    SecondFactorReset,
    /// A session was ended from the "this was not me" link of a sign-in notice.
    SessionEndedByLink,
    /// The password was set anew with an e-mailed reset link.
    PasswordReset,
    /// The user turned on a second factor.
    SecondFactorEnabled,
    /// The user made new recovery codes (the old ones stopped working).
    RecoveryCodesRenewed,
    /// A new browser became a trusted device of the user.
    DeviceTrusted,
    /// The user removed one of their trusted devices (its sessions ended).
    DeviceRevoked,
    /// The user made a temporary access code for support.
    SupportCodeCreated,
    /// Support staff redeemed it: a support session on the account began.
    SupportSessionStarted,
    /// A support session (or an unredeemed code) was ended before its time.
    SupportSessionEnded,
    /// An admin disabled the account (its sessions ended).
    UserDisabled,
    /// An admin enabled it again.
    UserEnabled,
    /// An admin saw the IP addresses of the account's sign-ins and writes, for the reason given.
    IpRelease,
    /// The operator exported the account's vaults (for break-glass recovery or for the user).
    Exported,
    /// The operator purged the account: its vaults and everything else of it are deleted.
    Purged,
    /// The operator gave the purged account to a new person, who enrolls afresh.
    Transferred,
}

/// A password reset link; the tree key is the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// Whose password.
    pub user: Id,
    /// When the link stops working.
    pub expires_ms: Millis,
}

/// An unsubscribe link of an optional notice; the tree key is the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    /// Whose notices.
    pub user: Id,
    /// Which kind the link turns off.
    pub kind: NoticeKind,
    /// When the link stops working.
    pub expires_ms: Millis,
}

/// A browser the user trusts: it proved possession of its device key (FORMAT.md §9.5) and
/// was confirmed once by an out-of-band code, an approval from another trusted device, or
/// enrollment. The tree key is the user id and the SHA-256 of the public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Public handle: 16 hex digits of the public key's SHA-256.
    pub id: String,
    /// Whose device.
    pub user: Id,
    /// The P-256 public key, uncompressed SEC1 (65 bytes), base64url without padding.
    pub public_key: String,
    /// The name the user gave it (at first: the browser and system it reported).
    pub name: String,
    /// When it was confirmed.
    pub created_ms: Millis,
    /// Its last sign-in.
    pub last_seen_ms: Millis,
    /// How it was confirmed: `enrollment`, `e-mail code`, `sms code` or `device <id>`.
    pub confirmed_by: String,
}

/// A "this was not me" link of a sign-in notice; the tree key is the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotMe {
    /// Whose session.
    pub user: Id,
    /// The session's public handle.
    pub session: String,
    /// When the link stops working: when the session would have ended on its own.
    pub expires_ms: Millis,
}

/// A security event: who did what to whose account, and on what grounds (FORMAT.md §9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityEvent {
    /// When.
    pub at_ms: Millis,
    /// What.
    pub kind: EventKind,
    /// Whose account.
    pub user: Id,
    /// Who did it: `admin:<username>` or `operator`.
    pub by: String,
    /// Who checked the user's identity (a name, as typed; empty when nobody had to).
    pub verified_by: String,
    /// How (for a second-factor reset; otherwise none).
    pub evidence: Option<Evidence>,
    /// The device concerned, for device events (its public handle).
    #[serde(default)]
    pub device: Option<String>,
    /// Why, as the actor typed it (an IP release's reason), or what (a support session's id).
    #[serde(default)]
    pub detail: Option<String>,
}

/// What a temporary access code lets support staff see or do on the account (a closed list:
/// nothing else, ever; no record, manifest, escrow copy or key is reachable by any scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupportScope {
    /// See the account's settings: username, practice, roles, state, e-mail, mobile, policy.
    ViewSettings,
    /// See its devices: names and when last used.
    ViewDevices,
    /// See its sign-in history, without IP addresses.
    ViewSignIns,
    /// See whether two-step sign-in is on, and how many recovery codes are left.
    ViewSecondFactor,
    /// See how much its vaults store.
    ViewStorage,
    /// Send an invitation of the user's practice again (for an admin's account).
    ResendInvitation,
    /// Remove one of its devices.
    RevokeDevice,
}

/// A temporary access code and the support session it opens (FORMAT.md §9.2). The code is
/// kept only as a hash, in `support_codes`, until it is redeemed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportGrant {
    /// Its id (16 random bytes, hex).
    pub id: Id,
    /// Whose account.
    pub user: Id,
    /// What it allows.
    pub scopes: BTreeSet<SupportScope>,
    /// When the code was made.
    pub created_ms: Millis,
    /// When the code, and the session it opens, end.
    pub expires_ms: Millis,
    /// The support staff member who redeemed it, and when.
    pub redeemed_by: Option<Id>,
    /// When it was redeemed.
    pub redeemed_ms: Option<Millis>,
    /// When it was ended before its time, and by whom (`user`, `support` or `admin:<name>`).
    pub ended: Option<(Millis, String)>,
    /// The hash of its code (hex), so that ending the grant deletes the code directly.
    #[serde(default)]
    pub code: String,
}

/// One thing a support session did, as its user sees it (the tree key is the grant id and a
/// sequence number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportAction {
    /// When.
    pub at_ms: Millis,
    /// Under which scope.
    pub scope: SupportScope,
    /// What exactly: a username, a device handle (never content).
    pub detail: String,
    /// Whether the code allowed it (a refused step is shown to the user too).
    #[serde(default = "allowed_by_default")]
    pub allowed: bool,
}

fn allowed_by_default() -> bool {
    true
}

/// A write to a vault, with the address it came from (released only as `IpRelease` says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    /// When.
    pub at_ms: Millis,
    /// Whose.
    pub user: Id,
    /// Which store: `notes` or `identities`.
    pub vault: String,
    /// The client's IP address.
    pub ip: String,
}
