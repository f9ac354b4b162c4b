package gossip

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by Config.Validate and
	// DetectorConfig.Validate for every bad field.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrClosed is returned by calls on a closed Gossip.
	ErrClosed = errors.New("gossip: closed")
	// ErrJoin is returned by Join when no seed could be contacted.
	ErrJoin = errors.New("gossip: join failed")

	// ErrBadMeta means node metadata is malformed or out of bounds.
	ErrBadMeta = errors.New("gossip: malformed meta")
	// ErrMetaTooLarge means encoded metadata exceeds memberlist.MetaMaxSize.
	ErrMetaTooLarge = errors.New("gossip: meta too large")
	// ErrMetaImmutable is returned by UpdateMeta for a change of ID or
	// cluster, or an attempt to tombstone the local node.
	ErrMetaImmutable = errors.New("gossip: meta id and cluster cannot change")
	// ErrBadState means a persisted State does not decode or validate.
	ErrBadState = errors.New("gossip: malformed state")
	// ErrBadMessage means a gossip message does not decode or validate.
	ErrBadMessage = errors.New("gossip: malformed message")
	// ErrBadLayout means a Layout breaks a rule of Layout.Validate.
	ErrBadLayout = errors.New("gossip: malformed layout")

	// ErrNotVetted means Config.Vet refused a node.
	ErrNotVetted = errors.New("gossip: node not vetted")
	// ErrVetPending is what Config.Vet returns while it is still vetting a
	// node that gossip will admit once it has (the refusals memberlist
	// logs for it are routine during a join, logged at debug level).
	ErrVetPending = errors.New("gossip: vetting in progress")

	// ErrWrongCluster means a peer names another cluster.
	ErrWrongCluster = errors.New("gossip: node belongs to another cluster")
	// ErrRemoved means the member was explicitly removed (tombstoned).
	ErrRemoved = errors.New("gossip: member was removed")
	// ErrUnknownMember is returned by Remove and SetIntent for an ID never
	// seen.
	ErrUnknownMember = errors.New("gossip: unknown member")
	// ErrRemoveSelf is returned by Remove for the local node's ID.
	ErrRemoveSelf = errors.New("gossip: cannot remove the local node")

	// ErrBadKey means a gossip encryption key is not 16, 24 or 32 bytes.
	ErrBadKey = errors.New("gossip: bad encryption key")
	// ErrNoKeyring is returned by the key operations of a Gossip started
	// without keys: encryption cannot be turned on while it runs.
	ErrNoKeyring = errors.New("gossip: encryption is off (started without keys)")
	// ErrKeyNotInstalled is returned by UseKey for a key not installed.
	ErrKeyNotInstalled = errors.New("gossip: key not installed")
	// ErrRemovePrimary is returned by RemoveKey for the primary key.
	ErrRemovePrimary = errors.New("gossip: cannot remove the primary key")

	// ErrBucketName means a bucket name is empty or too long.
	ErrBucketName = errors.New("gossip: invalid bucket name")
	// ErrBadN means N is outside [1, MaxN].
	ErrBadN = errors.New("gossip: bucket n out of range")
	// ErrBadR means R is outside [1, N].
	ErrBadR = errors.New("gossip: bucket r out of range")
	// ErrBadW means W is outside [1, N].
	ErrBadW = errors.New("gossip: bucket w out of range")
	// ErrBadConflict means Conflict is neither "siblings" nor "lww".
	ErrBadConflict = errors.New("gossip: bucket conflict mode unknown")
	// ErrBadStamp means Updated is negative or UpdatedBy too long.
	ErrBadStamp = errors.New("gossip: bucket update stamp invalid")
)
