//! Why packets were dropped or refused, counted. Every datagram that a state
//! machine does not act on increments exactly one [`DropReason`].

/// Why a datagram was not acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Too short to be any packet (an encrypted one needs 18 bytes at least),
    /// or shorter than its prefix byte says.
    TooSmall,
    /// The low 4 bits of the prefix byte are 7 or more.
    BadPacketType,
    /// A packet type this side never accepts (the server takes no challenge or
    /// denied packets; the client no request or response packets).
    PacketTypeNotAllowed,
    /// The high 4 bits of the prefix byte are outside 1..=8.
    BadSequenceBytes,
    /// The per-packet data does not have its type's size.
    BadSize,
    /// Already received, or older than the replay window.
    Replayed,
    /// Failed its AEAD: changed, forged, or under another key.
    Unauthentic,
    /// Encrypted, from an address with no encryption mapping (server).
    NoEncryptionMapping,
    /// A valid packet that means nothing in the receiver's state (for
    /// example a keep-alive from a client that is not connected yet).
    Unexpected,
    /// Not from the address the client is talking to (client).
    NotFromServer,
    /// Connection request: not 1078 bytes.
    RequestBadSize,
    /// Connection request: the version info is not "NETCODE 1.02".
    RequestBadVersion,
    /// Connection request: another game's protocol id.
    RequestWrongProtocol,
    /// Connection request: the token's expire timestamp has passed.
    RequestTokenExpired,
    /// Connection request: the private token failed to decrypt.
    RequestTokenUndecryptable,
    /// Connection request: the decrypted private token could not be read.
    RequestTokenUnreadable,
    /// Connection request: this server's address is not in the token.
    RequestServerNotInToken,
    /// Connection request or response: a client is connected from this address.
    AddressAlreadyConnected,
    /// Connection request or response: a client with this id is connected.
    ClientIdAlreadyConnected,
    /// Connection request: the token was already used from another address.
    RequestTokenUsedElsewhere,
    /// Connection request or response: every slot is taken (answered with a
    /// denied packet).
    ServerFull,
    /// Connection request: no room for another encryption mapping.
    RequestNoMappingRoom,
    /// Connection response: the challenge token failed to decrypt.
    ResponseChallengeUndecryptable,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = DropReason::ResponseChallengeUndecryptable as usize + 1;

    /// Every reason, in code order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::TooSmall,
        DropReason::BadPacketType,
        DropReason::PacketTypeNotAllowed,
        DropReason::BadSequenceBytes,
        DropReason::BadSize,
        DropReason::Replayed,
        DropReason::Unauthentic,
        DropReason::NoEncryptionMapping,
        DropReason::Unexpected,
        DropReason::NotFromServer,
        DropReason::RequestBadSize,
        DropReason::RequestBadVersion,
        DropReason::RequestWrongProtocol,
        DropReason::RequestTokenExpired,
        DropReason::RequestTokenUndecryptable,
        DropReason::RequestTokenUnreadable,
        DropReason::RequestServerNotInToken,
        DropReason::AddressAlreadyConnected,
        DropReason::ClientIdAlreadyConnected,
        DropReason::RequestTokenUsedElsewhere,
        DropReason::ServerFull,
        DropReason::RequestNoMappingRoom,
        DropReason::ResponseChallengeUndecryptable,
    ];

    /// The reason's name; JavaScript shows its counter as `netcodeDropped` + the name.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::TooSmall => "TooSmall",
            DropReason::BadPacketType => "BadPacketType",
            DropReason::PacketTypeNotAllowed => "PacketTypeNotAllowed",
            DropReason::BadSequenceBytes => "BadSequenceBytes",
            DropReason::BadSize => "BadSize",
            DropReason::Replayed => "Replayed",
            DropReason::Unauthentic => "Unauthentic",
            DropReason::NoEncryptionMapping => "NoEncryptionMapping",
            DropReason::Unexpected => "Unexpected",
            DropReason::NotFromServer => "NotFromServer",
            DropReason::RequestBadSize => "RequestBadSize",
            DropReason::RequestBadVersion => "RequestBadVersion",
            DropReason::RequestWrongProtocol => "RequestWrongProtocol",
            DropReason::RequestTokenExpired => "RequestTokenExpired",
            DropReason::RequestTokenUndecryptable => "RequestTokenUndecryptable",
            DropReason::RequestTokenUnreadable => "RequestTokenUnreadable",
            DropReason::RequestServerNotInToken => "RequestServerNotInToken",
            DropReason::AddressAlreadyConnected => "AddressAlreadyConnected",
            DropReason::ClientIdAlreadyConnected => "ClientIdAlreadyConnected",
            DropReason::RequestTokenUsedElsewhere => "RequestTokenUsedElsewhere",
            DropReason::ServerFull => "ServerFull",
            DropReason::RequestNoMappingRoom => "RequestNoMappingRoom",
            DropReason::ResponseChallengeUndecryptable => "ResponseChallengeUndecryptable",
        }
    }
}

/// Counters of one client or server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    drops: [u64; DropReason::COUNT],
    /// Private connect tokens decrypted (or attempted): at most one per request.
    pub token_decryptions: u64,
    /// Datagrams produced.
    pub datagrams_sent: u64,
    /// Datagrams acted on.
    pub datagrams_accepted: u64,
}

impl Stats {
    /// How many datagrams were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Adds another side's counters to these (an endpoint's server and clients, summed).
    pub fn add(&mut self, other: &Stats) {
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        self.token_decryptions += other.token_decryptions;
        self.datagrams_sent += other.datagrams_sent;
        self.datagrams_accepted += other.datagrams_accepted;
    }
}
