// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

/// @title Provenant model registry
/// @notice Records which model hashes were produced, audited or served inside an attested confidential VM, and by
/// which signed manifest. A model hash (the OMS root digest of the model files) maps to the manifest digests recorded
/// for it, in publication order; each manifest digest maps to its record (model, time, kind, revocation). Serving
/// logs anchor their receipt-tree checkpoints here too, once their serving record (kind 3) has registered them.
/// @dev The verifier service publishes in batches after checking the SEV-SNP evidence offchain. Publishing is
/// idempotent per manifest digest, so a batch can be retried after a failure without duplicates. Governance: the
/// admin is an OpenZeppelin AccessControlDefaultAdminRules admin (one account, two-step transfer after a delay), and
/// ROFL mode is one-way: once an app id is set it is never cleared, only replaced after that same delay.
interface IModelRegistry {
    /// @notice One verified provenance bundle, as the verifier records it.
    /// @param modelHash SHA-256 OMS root digest of the model the manifest describes (its subject; for a serving
    /// record, the model being served).
    /// @param manifestDigest SHA-256 of the signed manifest payload (the DSSE envelope's decoded payload bytes).
    /// @param parentModelHash OMS root digest of the base model for a fine-tune; for a serving record, the log id of its
    /// serving key (SHA-256 of the key's DER SubjectPublicKeyInfo), which the record registers for `anchorCheckpoint`;
    /// zero for an audit.
    /// @param measurementHash SHA-256 of the 48-byte SEV-SNP launch MEASUREMENT of the VM that signed it.
    /// @param policyDigest SHA-256 of the RFC 8785 canonical JSON of the verifier policy that accepted it.
    /// @param reportedTcb REPORTED_TCB of the attestation report (little-endian uint64 at offset 0x180).
    /// @param kind 1 fine-tune, 2 audit, 3 serving (a serving statement binding a serving key to the model).
    struct Attestation {
        bytes32 modelHash;
        bytes32 manifestDigest;
        bytes32 parentModelHash;
        bytes32 measurementHash;
        bytes32 policyDigest;
        uint64 reportedTcb;
        uint8 kind;
    }

    /// @notice The constructor was given the zero address as admin.
    error ModelRegistryZeroAdmin();
    /// @notice `account` holds no PUBLISHER_ROLE (checked only while no ROFL app id is set).
    error ModelRegistryUnauthorizedPublisher(address account);
    /// @notice `publish` was called with no items.
    error ModelRegistryEmptyBatch();
    /// @notice The batch holds `size` items, more than `maxSize` (MAX_BATCH_SIZE).
    error ModelRegistryBatchTooLarge(uint256 size, uint256 maxSize);
    /// @notice Item `index` of the batch has a zero model hash.
    error ModelRegistryZeroModelHash(uint256 index);
    /// @notice Item `index` of the batch has a zero manifest digest.
    error ModelRegistryZeroManifestDigest(uint256 index);
    /// @notice Item `index` of the batch has a zero measurement hash.
    error ModelRegistryZeroMeasurementHash(uint256 index);
    /// @notice Item `index` of the batch has a zero policy digest.
    error ModelRegistryZeroPolicyDigest(uint256 index);
    /// @notice Item `index` of the batch has a kind other than 1 (fine-tune), 2 (audit) or 3 (serving).
    error ModelRegistryUnknownKind(uint256 index, uint8 kind);
    /// @notice Item `index` is a fine-tune (kind 1) without a parent model hash.
    error ModelRegistryMissingParent(uint256 index);
    /// @notice Item `index` is an audit (kind 2) but names a parent model hash.
    error ModelRegistryUnexpectedParent(uint256 index, bytes32 parentModelHash);
    /// @notice Item `index` is a serving record (kind 3) without its log id (in `parentModelHash`).
    error ModelRegistryMissingLogId(uint256 index);
    /// @notice No record exists for `manifestDigest`.
    error ModelRegistryUnknownManifest(bytes32 manifestDigest);
    /// @notice The record for `manifestDigest` was already revoked.
    error ModelRegistryAlreadyRevoked(bytes32 manifestDigest);

    /// @notice A ROFL app id of zero was given: ROFL mode can be switched on or moved to another app, never off.
    error ModelRegistryZeroRoflAppId();
    /// @notice `setRoflAppId` was called while `currentAppId` is set; replacing it takes `proposeRoflAppId`.
    error ModelRegistryRoflAppIdAlreadySet(bytes21 currentAppId);
    /// @notice `proposeRoflAppId` was called while ROFL mode is off; the first app id is set with `setRoflAppId`.
    error ModelRegistryRoflAppIdNotSet();
    /// @notice The proposed app id `appId` is already the current one.
    error ModelRegistryRoflAppIdUnchanged(bytes21 appId);
    /// @notice `acceptRoflAppId` or `cancelRoflAppId` was called with no change pending.
    error ModelRegistryNoPendingRoflAppId();
    /// @notice The pending app id change takes effect at `effectiveAt`; the block time is `blockTimestamp`.
    error ModelRegistryRoflAppIdChangeNotReady(uint48 effectiveAt, uint256 blockTimestamp);

    /// @notice `anchorCheckpoint` was given a zero log id.
    error ModelRegistryZeroLogId();
    /// @notice No serving record (kind 3) has registered log `logId`, so it cannot be anchored.
    error ModelRegistryUnknownLog(bytes32 logId);
    /// @notice `anchorCheckpoint` was given a zero root hash for `treeSize` of log `logId`.
    error ModelRegistryZeroRootHash(bytes32 logId, uint64 treeSize);
    /// @notice Log `logId` already has a checkpoint of `latestTreeSize` leaves; `treeSize` must be larger.
    error ModelRegistryCheckpointNotNewer(bytes32 logId, uint64 treeSize, uint64 latestTreeSize);

    /// @notice A manifest was recorded for a model.
    /// @param modelHash OMS root digest of the model (indexed: filter by model).
    /// @param manifestDigest SHA-256 of the manifest payload (indexed: filter by manifest).
    /// @param parentModelHash Base model of a fine-tune (indexed: find a model's descendants), log id of a serving
    /// record (find the serving record of a log), zero for an audit.
    /// @param kind 1 fine-tune, 2 audit, 3 serving.
    /// @param measurementHash SHA-256 of the SEV-SNP launch measurement.
    /// @param policyDigest SHA-256 of the canonical verifier policy.
    /// @param reportedTcb REPORTED_TCB of the attestation report.
    event AttestationRecorded(
        bytes32 indexed modelHash,
        bytes32 indexed manifestDigest,
        bytes32 indexed parentModelHash,
        uint8 kind,
        bytes32 measurementHash,
        bytes32 policyDigest,
        uint64 reportedTcb
    );

    /// @notice A recorded manifest was revoked.
    /// @param manifestDigest The revoked manifest.
    /// @param reason Free text from the revoker (why it should no longer be trusted).
    event AttestationRevoked(bytes32 indexed manifestDigest, string reason);

    /// @notice The ROFL app id that `publish` and `anchorCheckpoint` require was set (previous zero) or replaced.
    /// @param previousAppId The app id before the change (zero the first time).
    /// @param newAppId The app id after the change, never zero.
    event RoflAppIdChanged(bytes21 previousAppId, bytes21 newAppId);

    /// @notice A replacement of the ROFL app id was proposed; it can be accepted from `effectiveAt` on.
    /// @param newAppId The proposed app id.
    /// @param effectiveAt The first block timestamp at which `acceptRoflAppId` succeeds.
    // solhint-disable-next-line gas-indexed-events
    event RoflAppIdChangeScheduled(bytes21 newAppId, uint48 effectiveAt);

    /// @notice A pending ROFL app id change was cancelled (explicitly, or replaced by a newer proposal).
    /// @param canceledAppId The app id that will not take effect.
    event RoflAppIdChangeCanceled(bytes21 canceledAppId);

    /// @notice A checkpoint of a serving log's receipt tree was anchored.
    /// @param logId SHA-256 of the serving key's DER SubjectPublicKeyInfo (indexed: filter by log).
    /// @param treeSize Number of receipts (leaves) in the RFC 6962 tree at this checkpoint.
    /// @param rootHash RFC 6962 root hash of the tree of `treeSize` leaves.
    // A size or a root is looked up per log, never alone: only the log is a topic (a topic costs 375 gas).
    // solhint-disable-next-line gas-indexed-events
    event CheckpointAnchored(bytes32 indexed logId, uint64 treeSize, bytes32 rootHash);

    /// @notice Role allowed to publish and anchor while no ROFL app id is set.
    /// @return The role id, keccak256("PUBLISHER_ROLE").
    function PUBLISHER_ROLE() external view returns (bytes32);

    /// @notice Role allowed to revoke records.
    /// @return The role id, keccak256("REVOKER_ROLE").
    function REVOKER_ROLE() external view returns (bytes32);

    /// @notice Largest number of items one `publish` call accepts.
    /// @return The maximum batch size.
    function MAX_BATCH_SIZE() external view returns (uint256);

    /// @notice Records a batch of verified attestations.
    /// @dev Without a ROFL app id the caller needs PUBLISHER_ROLE. With one, the transaction's origin must be an
    /// authorized instance of that ROFL app, and the role alone is not enough. Every item is validated first; an item
    /// whose manifest digest is already recorded is then skipped without an event or a state change.
    /// @param items The attestations, at most MAX_BATCH_SIZE.
    function publish(Attestation[] calldata items) external;

    /// @notice Marks a recorded manifest as revoked. The record stays, with `revoked` set, and stays revoked.
    /// @param manifestDigest The manifest to revoke.
    /// @param reason Why, for the people reading the event.
    function revoke(bytes32 manifestDigest, string calldata reason) external;

    /// @notice Anchors a checkpoint of a serving log: the RFC 6962 root of its first `treeSize` receipts.
    /// @dev The same publishers as `publish` (PUBLISHER_ROLE, or in ROFL mode only the app). Only a log registered by
    /// a serving record (kind 3) can be anchored. Tree sizes only grow per log: a size not larger than the latest
    /// anchored one reverts. Costs the same whatever the tree size, the log's first checkpoint included.
    /// @param logId SHA-256 of the serving key's DER SubjectPublicKeyInfo (one log per serving key), registered.
    /// @param treeSize Number of leaves covered, larger than the log's latest anchored size.
    /// @param rootHash The tree's RFC 6962 root hash, non-zero.
    function anchorCheckpoint(bytes32 logId, uint64 treeSize, bytes32 rootHash) external;

    /// @notice Switches ROFL mode on: from now on only instances of `appId` may publish and anchor. Immediate, and
    /// only while no app id is set (it only narrows who may publish, which the admin could do at once anyway by
    /// granting and revoking PUBLISHER_ROLE). It can never be undone; later changes go through `proposeRoflAppId`.
    /// @param appId The 21-byte ROFL app id (the bytes behind its bech32 `rofl1…` form), non-zero.
    function setRoflAppId(bytes21 appId) external;

    /// @notice Proposes replacing the current ROFL app id by `newAppId` (non-zero), effective after the admin delay
    /// (`defaultAdminDelay()` at the time of the proposal). A newer proposal replaces a pending one.
    /// @param newAppId The replacement app id.
    function proposeRoflAppId(bytes21 newAppId) external;

    /// @notice Makes the pending app id the current one, once its `effectiveAt` has come.
    function acceptRoflAppId() external;

    /// @notice Drops the pending app id change.
    function cancelRoflAppId() external;

    /// @notice The ROFL app id that `publish` and `anchorCheckpoint` require, zero while ROFL mode is off.
    /// @return The app id.
    function roflAppId() external view returns (bytes21);

    /// @notice The pending replacement of the ROFL app id, all zero when none.
    /// @return newAppId The proposed app id.
    /// @return effectiveAt The first block timestamp at which it can be accepted.
    function pendingRoflAppId() external view returns (bytes21 newAppId, uint48 effectiveAt);

    /// @notice Whether `manifestDigest` is recorded for `modelHash` (revoked records count as recorded).
    /// @param modelHash The model.
    /// @param manifestDigest The manifest.
    /// @return True when recorded for that model.
    function isRecorded(bytes32 modelHash, bytes32 manifestDigest) external view returns (bool);

    /// @notice The manifest recorded last for `modelHash`, of any kind, revoked or not; zero when none.
    /// @param modelHash The model.
    /// @return The manifest digest.
    function latestManifest(bytes32 modelHash) external view returns (bytes32);

    /// @notice Number of manifests recorded for `modelHash`; it only grows.
    /// @param modelHash The model.
    /// @return The count.
    function manifestCount(bytes32 modelHash) external view returns (uint256);

    /// @notice A page of the manifests recorded for `modelHash`, oldest first (the order never changes).
    /// @dev Returns an empty array when `offset` is at or past the end; `limit` is clipped to what remains.
    /// @param modelHash The model.
    /// @param offset Index of the first manifest to return.
    /// @param limit Most manifests to return.
    /// @return digests The manifest digests.
    function manifestsOf(
        bytes32 modelHash,
        uint256 offset,
        uint256 limit
    ) external view returns (bytes32[] memory digests);

    /// @notice The record of a manifest; all zero when it is not recorded.
    /// @param manifestDigest The manifest.
    /// @return modelHash The model it describes.
    /// @return publishedAt Timestamp of the block that recorded it.
    /// @return kind 1 fine-tune, 2 audit, 3 serving, 0 when not recorded.
    /// @return revoked Whether it was revoked.
    function recordOf(
        bytes32 manifestDigest
    ) external view returns (bytes32 modelHash, uint64 publishedAt, uint8 kind, bool revoked);

    /// @notice The root anchored for log `logId` at exactly `treeSize` leaves; zero when that size was not anchored.
    /// @param logId The log (SHA-256 of the serving key's DER SubjectPublicKeyInfo).
    /// @param treeSize The tree size.
    /// @return rootHash The anchored RFC 6962 root hash.
    function checkpointRoot(bytes32 logId, uint64 treeSize) external view returns (bytes32 rootHash);

    /// @notice The serving record that registered log `logId` (the first kind-3 record naming it); zero when none,
    /// and then the log cannot be anchored. The record's revocation is `recordOf(servingManifest).revoked`.
    /// @param logId The log (SHA-256 of the serving key's DER SubjectPublicKeyInfo).
    /// @return servingManifest The manifest digest of that serving record.
    function logOf(bytes32 logId) external view returns (bytes32 servingManifest);

    /// @notice The latest checkpoint anchored for log `logId`; all zero when none.
    /// @param logId The log.
    /// @return treeSize Its tree size.
    /// @return rootHash Its root hash.
    /// @return anchoredAt Timestamp of the block that anchored it.
    function latestCheckpoint(
        bytes32 logId
    ) external view returns (uint64 treeSize, bytes32 rootHash, uint64 anchoredAt);
}
