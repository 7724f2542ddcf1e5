// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Subcall} from "@oasisprotocol/sapphire-contracts/contracts/Subcall.sol";

import {IModelRegistry} from "./IModelRegistry.sol";

/// @title Provenant model registry on Oasis Sapphire
/// @notice Maps model hashes to the attested manifests recorded for them, and serving logs to their anchored
/// checkpoints. It trusts its publishers (the verifier service, or in ROFL mode only the configured ROFL app) to have
/// checked the hardware evidence offchain.
/// @dev Storage is laid out for gas: a new model costs four fresh slots, another manifest for a known model two
/// fresh slots and one update, a serving record two more (its log's head and serving manifest), and a checkpoint one
/// fresh slot and an update of the head its serving record created (see docs/contract.md). A model is
/// referred to inside records by a 176-bit key, the low bits of its hash (probed on the improbable collision), so a
/// record's metadata fits in one slot. Governance: one admin (AccessControlDefaultAdminRules: two-step transfer after
/// `defaultAdminDelay()`), and a ROFL app id that, once set, can only be replaced after that same delay, never cleared.
contract ModelRegistry is AccessControlDefaultAdminRules, IModelRegistry {
    /// @inheritdoc IModelRegistry
    bytes32 public constant override PUBLISHER_ROLE = keccak256("PUBLISHER_ROLE");
    /// @inheritdoc IModelRegistry
    bytes32 public constant override REVOKER_ROLE = keccak256("REVOKER_ROLE");
    /// @inheritdoc IModelRegistry
    /// @dev 128 records of new models cost about 12.4 M gas, under the 15 M gas blocks Sapphire has used so far.
    uint256 public constant override MAX_BATCH_SIZE = 128;

    uint8 private constant _KIND_FINETUNE = 1;
    uint8 private constant _KIND_AUDIT = 2;
    uint8 private constant _KIND_SERVING = 3;

    /// @dev One slot per manifest: 176 + 64 + 8 + 8 = 256 bits. `kind != 0` means the record exists.
    struct Record {
        uint176 modelKey;
        uint64 publishedAt;
        uint8 kind;
        bool revoked;
    }

    /// @dev One slot per model: its key and how many manifests it has (the next index in `_manifests`).
    struct Model {
        uint176 key;
        uint64 count;
    }

    /// @dev A serving log's latest checkpoint, in one slot (its root is in `_checkpointRoots`). The log's serving
    /// record writes it first with `registered` set, so that the slot is never zero once the log exists and the
    /// log's first anchor updates it (5,000 gas) instead of filling a fresh slot (22,100): that keeps every anchor,
    /// the first included, under 60,000 gas (issue 15).
    struct LogHead {
        uint64 treeSize;
        uint64 anchoredAt;
        bool registered;
    }

    mapping(bytes32 manifestDigest => Record) private _records;
    mapping(bytes32 modelHash => Model) private _models;
    mapping(uint176 modelKey => bytes32 modelHash) private _modelHashes;
    mapping(bytes32 modelHash => mapping(uint256 index => bytes32 manifestDigest)) private _manifests;
    mapping(bytes32 logId => LogHead) private _logHeads;
    mapping(bytes32 logId => bytes32 servingManifest) private _logManifests;
    mapping(bytes32 logId => mapping(uint64 treeSize => bytes32 rootHash)) private _checkpointRoots;
    /// @dev Alone in its slot: every publish and anchor reads it. Never goes back to zero once set.
    bytes21 private _roflAppId;
    /// @dev The pending replacement and when it may be accepted, packed in one slot (zero: none pending).
    bytes21 private _pendingRoflAppId;
    uint48 private _pendingRoflAppIdEffectiveAt;

    /// @dev Allows the call only from a publisher: the ROFL app when one is set, else a PUBLISHER_ROLE holder.
    modifier onlyPublisher() {
        _checkPublisher();
        _;
    }

    /// @notice Deploys the registry with `admin` as its only DEFAULT_ADMIN_ROLE holder; no one can publish yet.
    /// @param admin The account that grants roles and sets the ROFL app id.
    /// @param initialAdminDelay Seconds that an admin transfer, and a replacement of the ROFL app id, must wait after
    /// being announced (scripts/deploy.ts: 2 days outside development chains). Changing it later waits too.
    constructor(
        address admin,
        uint48 initialAdminDelay
    ) AccessControlDefaultAdminRules(initialAdminDelay, _nonZeroAdmin(admin)) {}

    /// @inheritdoc IModelRegistry
    function publish(Attestation[] calldata items) external override onlyPublisher {
        uint256 size = items.length;
        if (size == 0) revert ModelRegistryEmptyBatch();
        if (size > MAX_BATCH_SIZE) revert ModelRegistryBatchTooLarge(size, MAX_BATCH_SIZE);
        uint64 publishedAt = uint64(block.timestamp);
        // One pass: an invalid item reverts the whole transaction, undoing the items recorded before it.
        for (uint256 i = 0; i < size; ++i) {
            Attestation calldata item = items[i];
            _validate(item, i);
            _record(item, publishedAt);
        }
    }

    /// @inheritdoc IModelRegistry
    function revoke(bytes32 manifestDigest, string calldata reason) external override onlyRole(REVOKER_ROLE) {
        Record storage record = _records[manifestDigest];
        if (record.kind == 0) revert ModelRegistryUnknownManifest(manifestDigest);
        if (record.revoked) revert ModelRegistryAlreadyRevoked(manifestDigest);
        record.revoked = true;
        emit AttestationRevoked(manifestDigest, reason);
    }

    /// @inheritdoc IModelRegistry
    function anchorCheckpoint(bytes32 logId, uint64 treeSize, bytes32 rootHash) external override onlyPublisher {
        if (logId == bytes32(0)) revert ModelRegistryZeroLogId();
        if (rootHash == bytes32(0)) revert ModelRegistryZeroRootHash(logId, treeSize);
        LogHead memory head = _logHeads[logId];
        // Only logs of attested serving keys: a serving record (kind 3) registered this one.
        if (!head.registered) revert ModelRegistryUnknownLog(logId);
        uint64 latestTreeSize = head.treeSize;
        // Also refuses size 0 (the empty tree) as the first checkpoint, so a zero size always means "none yet".
        // solhint-disable-next-line gas-strict-inequalities
        if (treeSize <= latestTreeSize) revert ModelRegistryCheckpointNotNewer(logId, treeSize, latestTreeSize);
        _checkpointRoots[logId][treeSize] = rootHash;
        _logHeads[logId] = LogHead({treeSize: treeSize, anchoredAt: uint64(block.timestamp), registered: true});
        emit CheckpointAnchored(logId, treeSize, rootHash);
    }

    /// @inheritdoc IModelRegistry
    function setRoflAppId(bytes21 appId) external override onlyRole(DEFAULT_ADMIN_ROLE) {
        if (appId == bytes21(0)) revert ModelRegistryZeroRoflAppId();
        bytes21 currentAppId = _roflAppId;
        if (currentAppId != bytes21(0)) revert ModelRegistryRoflAppIdAlreadySet(currentAppId);
        _roflAppId = appId;
        emit RoflAppIdChanged(bytes21(0), appId);
    }

    /// @inheritdoc IModelRegistry
    function proposeRoflAppId(bytes21 newAppId) external override onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newAppId == bytes21(0)) revert ModelRegistryZeroRoflAppId();
        bytes21 currentAppId = _roflAppId;
        if (currentAppId == bytes21(0)) revert ModelRegistryRoflAppIdNotSet();
        if (newAppId == currentAppId) revert ModelRegistryRoflAppIdUnchanged(newAppId);
        bytes21 replaced = _pendingRoflAppId;
        // The same wait as an admin transfer: a stolen admin key gains nothing faster through the app id.
        uint48 effectiveAt = SafeCast.toUint48(block.timestamp) + defaultAdminDelay();
        _pendingRoflAppId = newAppId;
        _pendingRoflAppIdEffectiveAt = effectiveAt;
        if (replaced != bytes21(0)) emit RoflAppIdChangeCanceled(replaced);
        emit RoflAppIdChangeScheduled(newAppId, effectiveAt);
    }

    /// @inheritdoc IModelRegistry
    function acceptRoflAppId() external override onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes21 newAppId = _pendingRoflAppId;
        if (newAppId == bytes21(0)) revert ModelRegistryNoPendingRoflAppId();
        uint48 effectiveAt = _pendingRoflAppIdEffectiveAt;
        if (block.timestamp < effectiveAt) revert ModelRegistryRoflAppIdChangeNotReady(effectiveAt, block.timestamp);
        bytes21 previousAppId = _roflAppId;
        _roflAppId = newAppId;
        delete _pendingRoflAppId;
        delete _pendingRoflAppIdEffectiveAt;
        emit RoflAppIdChanged(previousAppId, newAppId);
    }

    /// @inheritdoc IModelRegistry
    function cancelRoflAppId() external override onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes21 canceledAppId = _pendingRoflAppId;
        if (canceledAppId == bytes21(0)) revert ModelRegistryNoPendingRoflAppId();
        delete _pendingRoflAppId;
        delete _pendingRoflAppIdEffectiveAt;
        emit RoflAppIdChangeCanceled(canceledAppId);
    }

    /// @inheritdoc IModelRegistry
    function roflAppId() external view override returns (bytes21) {
        return _roflAppId;
    }

    /// @inheritdoc IModelRegistry
    function pendingRoflAppId() external view override returns (bytes21 newAppId, uint48 effectiveAt) {
        return (_pendingRoflAppId, _pendingRoflAppIdEffectiveAt);
    }

    /// @inheritdoc IModelRegistry
    function isRecorded(bytes32 modelHash, bytes32 manifestDigest) external view override returns (bool) {
        Record storage record = _records[manifestDigest];
        return record.kind != 0 && _modelHashes[record.modelKey] == modelHash;
    }

    /// @inheritdoc IModelRegistry
    function latestManifest(bytes32 modelHash) external view override returns (bytes32) {
        uint256 count = _models[modelHash].count;
        return count == 0 ? bytes32(0) : _manifests[modelHash][count - 1];
    }

    /// @inheritdoc IModelRegistry
    function manifestCount(bytes32 modelHash) external view override returns (uint256) {
        return _models[modelHash].count;
    }

    /// @inheritdoc IModelRegistry
    function manifestsOf(
        bytes32 modelHash,
        uint256 offset,
        uint256 limit
    ) external view override returns (bytes32[] memory digests) {
        uint256 count = _models[modelHash].count;
        uint256 remaining = offset < count ? count - offset : 0;
        uint256 size = limit < remaining ? limit : remaining;
        digests = new bytes32[](size);
        mapping(uint256 index => bytes32 manifestDigest) storage manifests = _manifests[modelHash];
        for (uint256 i = 0; i < size; ++i) {
            digests[i] = manifests[offset + i];
        }
    }

    /// @inheritdoc IModelRegistry
    function recordOf(
        bytes32 manifestDigest
    ) external view override returns (bytes32 modelHash, uint64 publishedAt, uint8 kind, bool revoked) {
        Record memory record = _records[manifestDigest];
        if (record.kind == 0) return (bytes32(0), 0, 0, false);
        return (_modelHashes[record.modelKey], record.publishedAt, record.kind, record.revoked);
    }

    /// @inheritdoc IModelRegistry
    function checkpointRoot(bytes32 logId, uint64 treeSize) external view override returns (bytes32 rootHash) {
        return _checkpointRoots[logId][treeSize];
    }

    /// @inheritdoc IModelRegistry
    function logOf(bytes32 logId) external view override returns (bytes32 servingManifest) {
        return _logManifests[logId];
    }

    /// @inheritdoc IModelRegistry
    function latestCheckpoint(
        bytes32 logId
    ) external view override returns (uint64 treeSize, bytes32 rootHash, uint64 anchoredAt) {
        LogHead memory head = _logHeads[logId];
        return (head.treeSize, _checkpointRoots[logId][head.treeSize], head.anchoredAt);
    }

    /// @inheritdoc AccessControlDefaultAdminRules
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(IModelRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    /// @dev Reverts unless the caller may publish now. In ROFL mode `msg.sender` is not trusted at all: the
    /// SUBCALL precompile answers whether the transaction was signed by an authorized instance of the app.
    function _checkPublisher() internal view {
        bytes21 appId = _roflAppId;
        if (appId != bytes21(0)) {
            Subcall.roflEnsureAuthorizedOrigin(appId);
        } else if (!hasRole(PUBLISHER_ROLE, _msgSender())) {
            revert ModelRegistryUnauthorizedPublisher(_msgSender());
        }
    }

    /// @dev Reverts with ModelRegistryZeroAdmin before OpenZeppelin's own check, so the error keeps its name.
    function _nonZeroAdmin(address admin) private pure returns (address) {
        if (admin == address(0)) revert ModelRegistryZeroAdmin();
        return admin;
    }

    /// @dev Reverts with the first problem of item `index`.
    function _validate(Attestation calldata item, uint256 index) internal pure {
        if (item.modelHash == bytes32(0)) revert ModelRegistryZeroModelHash(index);
        if (item.manifestDigest == bytes32(0)) revert ModelRegistryZeroManifestDigest(index);
        if (item.measurementHash == bytes32(0)) revert ModelRegistryZeroMeasurementHash(index);
        if (item.policyDigest == bytes32(0)) revert ModelRegistryZeroPolicyDigest(index);
        uint8 kind = item.kind;
        if (kind == _KIND_FINETUNE) {
            if (item.parentModelHash == bytes32(0)) revert ModelRegistryMissingParent(index);
        } else if (kind == _KIND_AUDIT) {
            // An audit is about the model itself: no lineage to record.
            if (item.parentModelHash != bytes32(0)) revert ModelRegistryUnexpectedParent(index, item.parentModelHash);
        } else if (kind == _KIND_SERVING) {
            // A serving record carries its serving key's log id there (indexed in AttestationRecorded).
            if (item.parentModelHash == bytes32(0)) revert ModelRegistryMissingLogId(index);
        } else {
            revert ModelRegistryUnknownKind(index, kind);
        }
    }

    /// @dev Records one validated item unless its manifest is already recorded (then nothing happens); a serving
    /// record also registers its log.
    function _record(Attestation calldata item, uint64 publishedAt) internal {
        bytes32 manifestDigest = item.manifestDigest;
        if (_records[manifestDigest].kind != 0) return;
        bytes32 modelHash = item.modelHash;
        Model memory model = _models[modelHash];
        if (model.count == 0) model.key = _newModelKey(modelHash);
        _manifests[modelHash][model.count] = manifestDigest;
        _models[modelHash] = Model({key: model.key, count: model.count + 1});
        _records[manifestDigest] = Record({
            modelKey: model.key,
            publishedAt: publishedAt,
            kind: item.kind,
            revoked: false
        });
        if (item.kind == _KIND_SERVING) _registerLog(item.parentModelHash, manifestDigest);
        emit AttestationRecorded(
            modelHash,
            manifestDigest,
            item.parentModelHash,
            item.kind,
            item.measurementHash,
            item.policyDigest,
            item.reportedTcb
        );
    }

    /// @dev Registers log `logId` for `servingManifest` unless a serving record already did: the first one stays, as
    /// a recorded manifest never changes model. Its head becomes non-zero here, with no checkpoint yet.
    function _registerLog(bytes32 logId, bytes32 servingManifest) internal {
        LogHead storage head = _logHeads[logId];
        if (head.registered) return;
        head.registered = true;
        _logManifests[logId] = servingManifest;
    }

    /// @dev Gives a first-seen model its key: the low 176 bits of its hash, or the next free key when another model
    /// already holds it (finding one needs about 2^88 hashes). Zero is never a key, so zero means "no model".
    function _newModelKey(bytes32 modelHash) internal returns (uint176 key) {
        key = uint176(uint256(modelHash));
        unchecked {
            while (key == 0 || _modelHashes[key] != bytes32(0)) ++key;
        }
        _modelHashes[key] = modelHash;
    }
}
