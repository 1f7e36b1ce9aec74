//! What a raw request asks for: its message type (the first body line) and,
//! for management requests, the command (the second body line).

use std::fmt;

use crate::uid::Uid;

/// The type of a raw request, written as its first body line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RawMessageType {
    /// `init`: a service registers with the manager.
    Init,
    /// `hello`: the beacon, or a service's periodic refresh.
    Hello,
    /// `bye`: a service leaves; the manager does not answer.
    Bye,
    /// `mgmt`: a management request; the command is on the next line.
    Mgmt,
}

impl RawMessageType {
    /// All four.
    pub const ALL: [RawMessageType; 4] = [Self::Init, Self::Hello, Self::Bye, Self::Mgmt];

    /// The body line, lowercase as the old system writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Hello => "hello",
            Self::Bye => "bye",
            Self::Mgmt => "mgmt",
        }
    }

    /// Reads a body line, ignoring ASCII case as the old manager did.
    ///
    /// ```
    /// use plughost_proto::raw::RawMessageType;
    /// assert_eq!(RawMessageType::from_line("HELLO"), Some(RawMessageType::Hello));
    /// assert_eq!(RawMessageType::from_line("hello "), None);
    /// ```
    pub fn from_line(line: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(line))
    }
}

impl fmt::Display for RawMessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A management command, the second body line of a `mgmt` request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MgmtCommand {
    /// `l`: list the registered services.
    List,
    /// `e`: shut the manager down (plughost requires the admin token).
    Exit,
    /// `s <uuid>`: stop the service with this uid.
    Stop(Uid),
    /// Any other line, kept so the manager can say what it did not understand.
    Other(String),
}

impl MgmtCommand {
    /// Reads a command line. Never fails: what is not `l`, `e` or `s <uuid>` is [`MgmtCommand::Other`].
    ///
    /// ```
    /// use plughost_proto::raw::MgmtCommand;
    /// assert_eq!(MgmtCommand::parse("l"), MgmtCommand::List);
    /// let stop = MgmtCommand::parse("s 2f1c3a4b-5d6e-4f70-8a9b-0c1d2e3f4a5b");
    /// assert!(matches!(stop, MgmtCommand::Stop(_)));
    /// assert_eq!(stop.to_string(), "s 2f1c3a4b-5d6e-4f70-8a9b-0c1d2e3f4a5b");
    /// ```
    pub fn parse(line: &str) -> Self {
        match line {
            "l" => Self::List,
            "e" => Self::Exit,
            _ => match line.strip_prefix("s ").map(Uid::parse) {
                Some(Ok(uid)) => Self::Stop(uid),
                _ => Self::Other(line.to_owned()),
            },
        }
    }
}

impl fmt::Display for MgmtCommand {
    /// The command line as sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::List => f.write_str("l"),
            Self::Exit => f.write_str("e"),
            Self::Stop(uid) => write!(f, "s {uid}"),
            Self::Other(line) => f.write_str(line),
        }
    }
}
