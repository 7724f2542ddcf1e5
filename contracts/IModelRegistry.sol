// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

/// @title Provenant model registry
/// @notice Records which model hashes were produced or audited inside an attested confidential VM, and by which
/// signed manifest. A model hash (the OMS root digest of the model files) maps to the manifest digests recorded
/// for it, in publication order; each manifest digest maps to its record (model, time, kind, revocation).
/// @dev The verifier service publishes in batches after checking the SEV-SNP evidence offchain. Publishing is
/// idempotent per manifest digest, so a batch can be retried after a failure without duplicates.
interface IModelRegistry {
    /// @notice One verified provenance bundle, as the verifier records it.
    /// @param modelHash SHA-256 OMS root digest of the model the manifest describes (its subject).
    /// @param manifestDigest SHA-256 of the signed manifest payload (the DSSE envelope's decoded payload bytes).
    /// @param parentModelHash OMS root digest of the base model for a fine-tune; zero for an audit.
    /// @param measurementHash SHA-256 of the 48-byte SEV-SNP launch MEASUREMENT of the VM that signed it.
    /// @param policyDigest SHA-256 of the RFC 8785 canonical JSON of the verifier policy that accepted it.
    /// @param reportedTcb REPORTED_TCB of the attestation report (little-endian uint64 at offset 0x180).
    /// @param kind 1 for a fine-tune, 2 for an audit.
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
    /// @notice Item `index` of the batch has a kind other than 1 (fine-tune) or 2 (audit).
    error ModelRegistryUnknownKind(uint256 index, uint8 kind);
    /// @notice Item `index` is a fine-tune (kind 1) without a parent model hash.
    error ModelRegistryMissingParent(uint256 index);
    /// @notice Item `index` is an audit (kind 2) but names a parent model hash.
    error ModelRegistryUnexpectedParent(uint256 index, bytes32 parentModelHash);
    /// @notice No record exists for `manifestDigest`.
    error ModelRegistryUnknownManifest(bytes32 manifestDigest);
    /// @notice The record for `manifestDigest` was already revoked.
    error ModelRegistryAlreadyRevoked(bytes32 manifestDigest);

    /// @notice A manifest was recorded for a model.
    /// @param modelHash OMS root digest of the model (indexed: filter by model).
    /// @param manifestDigest SHA-256 of the manifest payload (indexed: filter by manifest).
    /// @param parentModelHash Base model of a fine-tune, zero for an audit (indexed: find a model's descendants).
    /// @param kind 1 fine-tune, 2 audit.
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

    /// @notice The ROFL app id that `publish` requires was changed (zero: ROFL mode off).
    /// @param previousAppId The app id before the change.
    /// @param newAppId The app id after the change.
    event RoflAppIdChanged(bytes21 previousAppId, bytes21 newAppId);

    /// @notice Role allowed to publish while no ROFL app id is set.
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

    /// @notice Sets the ROFL app id whose instances alone may publish; zero turns ROFL mode off.
    /// @param newAppId The 21-byte ROFL app id (the bytes behind its bech32 `rofl1…` form), or zero.
    function setRoflAppId(bytes21 newAppId) external;

    /// @notice The ROFL app id that `publish` requires, zero when ROFL mode is off.
    /// @return The app id.
    function roflAppId() external view returns (bytes21);

    /// @notice Whether `manifestDigest` is recorded for `modelHash` (revoked records count as recorded).
    /// @param modelHash The model.
    /// @param manifestDigest The manifest.
    /// @return True when recorded for that model.
    function isRecorded(bytes32 modelHash, bytes32 manifestDigest) external view returns (bool);

    /// @notice The manifest recorded last for `modelHash`, revoked or not; zero when none.
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
    /// @return kind 1 fine-tune, 2 audit, 0 when not recorded.
    /// @return revoked Whether it was revoked.
    function recordOf(
        bytes32 manifestDigest
    ) external view returns (bytes32 modelHash, uint64 publishedAt, uint8 kind, bool revoked);
}
