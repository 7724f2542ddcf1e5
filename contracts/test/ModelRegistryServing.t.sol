// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

// Test-only code: assertion messages read better than they pack, ghost structs live in memory, a refused call is
// an expected outcome (empty catch), and the checks compare as the rules are stated.
// solhint-disable gas-small-strings, gas-struct-packing, no-empty-blocks, gas-strict-inequalities

import {IModelRegistry} from "../IModelRegistry.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {CheatsTest} from "./Cheats.sol";
import {SubcallMock} from "./SubcallMock.sol";

/// @title Tests of serving records (kind 3), the logs they register, and anchored receipt-log checkpoints
/// @notice A serving record carries its serving key's log id in `parentModelHash` (non-zero) and registers that log;
/// it is published, skipped on repeat and revoked like the other kinds. Checkpoints are anchored only for registered
/// logs, only by publishers (or the ROFL app), with non-zero roots, and tree sizes that only grow per log; fuzzed
/// sequences of registrations and anchors over several logs are checked against a model after every step.
contract ModelRegistryServingTest is CheatsTest {
    address private constant _SUBCALL = 0x0100000000000000000000000000000000000103;
    address private constant _PUBLISHER = address(0xB0B);
    address private constant _STRANGER = address(0xBAD);
    bytes21 private constant _APP_ID = bytes21(keccak256("provenant test app"));
    uint8 private constant _KIND_SERVING = 3;
    uint256 private constant _LOGS = 4;
    uint256 private constant _MANIFESTS = 6;

    ModelRegistry private _registry;

    /// @dev One successful anchor, as the test expects to read it back.
    struct Anchored {
        uint256 log;
        uint64 treeSize;
        bytes32 rootHash;
        uint64 anchoredAt;
    }

    /// @dev What the fuzzed sequence expects of the registry, tracked beside it.
    struct Ghost {
        Anchored[] anchored;
        uint256 count;
        Anchored[] latest;
        bytes32[] logManifest; // per log: the serving manifest that registered it, zero when none
        uint256[] manifestLog; // per manifest of the pool: 1 + the log it was recorded with, zero when not recorded
    }

    /// @notice Deploys a registry with this contract as admin and revoker, and `_PUBLISHER` as publisher.
    function setUp() public {
        VM.warp(1_700_000_000);
        _registry = new ModelRegistry(address(this), 0);
        _registry.grantRole(_registry.PUBLISHER_ROLE(), _PUBLISHER);
        _registry.grantRole(_registry.REVOKER_ROLE(), address(this));
    }

    // ---------------------------------------------------------------- kind 3, serving records

    /// @notice A serving record (kind 3, log id in the parent field) is recorded, announced with the log id as
    /// topic 3, listed for its model, registers its log (no checkpoint yet) and is revocable; revocation leaves the
    /// log registered (receipts issued before it can still be anchored; readers check `recordOf(logOf(log))`).
    function testServingRecordIsPublishedRegistersItsLogAndIsRevocable() public {
        IModelRegistry.Attestation memory item = _serving(keccak256("served model"), keccak256("manifest"), _log(0));
        _check(_registry.logOf(_log(0)) == bytes32(0), "a log is registered before its serving record");
        _expectEvent(address(_registry));
        emit IModelRegistry.AttestationRecorded(
            item.modelHash,
            item.manifestDigest,
            _log(0),
            _KIND_SERVING,
            item.measurementHash,
            item.policyDigest,
            item.reportedTcb
        );
        _publish(item);
        (bytes32 modelHash, uint64 publishedAt, uint8 kind, bool revoked) = _registry.recordOf(item.manifestDigest);
        _check(modelHash == item.modelHash && publishedAt == block.timestamp, "record");
        _check(kind == _KIND_SERVING && !revoked, "kind or revoked");
        _check(_registry.latestManifest(item.modelHash) == item.manifestDigest, "latestManifest");
        _check(_registry.isRecorded(item.modelHash, item.manifestDigest), "isRecorded");
        _check(_registry.logOf(_log(0)) == item.manifestDigest, "logOf");
        (uint64 treeSize, bytes32 rootHash, uint64 anchoredAt) = _registry.latestCheckpoint(_log(0));
        _check(treeSize == 0 && rootHash == bytes32(0) && anchoredAt == 0, "a registered log has a checkpoint");

        _publish(item); // again: skipped
        _check(_registry.manifestCount(item.modelHash) == 1, "a repeated serving record was recorded twice");

        _expectEvent(address(_registry));
        emit IModelRegistry.AttestationRevoked(item.manifestDigest, "serving key leaked");
        _registry.revoke(item.manifestDigest, "serving key leaked");
        (, , , revoked) = _registry.recordOf(item.manifestDigest);
        _check(revoked, "serving record not revoked");
        _check(_registry.logOf(_log(0)) == item.manifestDigest, "revocation unregistered the log");
        VM.prank(_PUBLISHER);
        _registry.anchorCheckpoint(_log(0), 1, keccak256("root"));
    }

    /// @notice A serving record without a log id is refused with the item's index.
    function testServingRecordWithoutALogIdIsRefused() public {
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](2);
        items[0] = _serving(keccak256("served model"), keccak256("manifest 0"), _log(0));
        items[1] = _serving(keccak256("served model"), keccak256("manifest 1"), bytes32(0));
        VM.prank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryMissingLogId.selector, 1));
        _registry.publish(items);
        _check(_registry.logOf(_log(0)) == bytes32(0), "a reverted batch registered a log");
    }

    /// @notice The first serving record of a log keeps it: a second one (same batch or later) is recorded but does
    /// not take the log over, and a repeat of a recorded manifest naming another log is skipped without registering.
    function testTheFirstServingRecordOfALogKeepsIt() public {
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](2);
        items[0] = _serving(keccak256("model"), keccak256("first"), _log(0));
        items[1] = _serving(keccak256("model"), keccak256("second"), _log(0));
        VM.prank(_PUBLISHER);
        _registry.publish(items);
        _check(_registry.logOf(_log(0)) == keccak256("first"), "the second serving record took the log");
        _check(_registry.manifestCount(keccak256("model")) == 2, "the second serving record was not recorded");
        VM.prank(_PUBLISHER);
        _registry.anchorCheckpoint(_log(0), 5, keccak256("root 5"));

        _publish(_serving(keccak256("model"), keccak256("third"), _log(0)));
        _check(_registry.logOf(_log(0)) == keccak256("first"), "a later serving record took the log");
        (uint64 treeSize, , ) = _registry.latestCheckpoint(_log(0));
        _check(treeSize == 5, "a later serving record reset the log's head");

        _publish(_serving(keccak256("model"), keccak256("first"), _log(1)));
        _check(_registry.logOf(_log(1)) == bytes32(0), "a skipped repeat registered a log");
    }

    /// @notice Only a serving record registers a log: a fine-tune whose parent equals a log id does not.
    function testOnlyServingRecordsRegisterLogs() public {
        IModelRegistry.Attestation memory item = _serving(keccak256("model"), keccak256("fine-tune"), _log(0));
        item.kind = 1;
        _publish(item);
        _check(_registry.logOf(_log(0)) == bytes32(0), "a fine-tune registered a log");
        VM.prank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryUnknownLog.selector, _log(0)));
        _registry.anchorCheckpoint(_log(0), 1, keccak256("root"));
    }

    /// @notice An audit (kind 2) that names a parent is still refused with the item's index and the parent.
    function testAuditWithAParentIsRefused() public {
        IModelRegistry.Attestation memory item = _serving(keccak256("model"), keccak256("audit"), keccak256("base"));
        item.kind = 2;
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](1);
        items[0] = item;
        VM.prank(_PUBLISHER);
        VM.expectRevert(
            abi.encodeWithSelector(IModelRegistry.ModelRegistryUnexpectedParent.selector, 0, keccak256("base"))
        );
        _registry.publish(items);
    }

    /// @notice Kind 4 and above stay unknown.
    function testKindFourIsRefused() public {
        IModelRegistry.Attestation memory item = _serving(keccak256("model"), keccak256("manifest"), _log(0));
        item.kind = 4;
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](1);
        items[0] = item;
        VM.prank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryUnknownKind.selector, 0, uint8(4)));
        _registry.publish(items);
    }

    // ---------------------------------------------------------------- checkpoints

    /// @notice An anchor of a registered log is stored, announced and readable by size and as the latest.
    function testAnchorIsStoredAndAnnounced() public {
        bytes32 logId = _register(0);
        _expectEvent(address(_registry));
        emit IModelRegistry.CheckpointAnchored(logId, 1000, keccak256("root 1000"));
        VM.prank(_PUBLISHER);
        _registry.anchorCheckpoint(logId, 1000, keccak256("root 1000"));
        _check(_registry.checkpointRoot(logId, 1000) == keccak256("root 1000"), "checkpointRoot");
        _check(_registry.checkpointRoot(logId, 999) == bytes32(0), "a size never anchored has a root");
        (uint64 treeSize, bytes32 rootHash, uint64 anchoredAt) = _registry.latestCheckpoint(logId);
        _check(treeSize == 1000 && rootHash == keccak256("root 1000"), "latestCheckpoint");
        _check(anchoredAt == block.timestamp, "anchoredAt");
        _check(_registry.logOf(logId) == _manifest(0), "anchoring changed the log's serving record");
        (treeSize, rootHash, anchoredAt) = _registry.latestCheckpoint(_log(1));
        _check(treeSize == 0 && rootHash == bytes32(0) && anchoredAt == 0, "an empty log has a checkpoint");
    }

    /// @notice A log no serving record registered is refused with its id, and nothing is stored.
    function testAnchorRefusesAnUnregisteredLog() public {
        _register(0);
        VM.prank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryUnknownLog.selector, _log(1)));
        _registry.anchorCheckpoint(_log(1), 1, keccak256("root"));
        _check(_registry.checkpointRoot(_log(1), 1) == bytes32(0), "a refused anchor stored a root");
    }

    /// @notice A tree size not larger than the latest one reverts with both sizes, and so does a first size of 0.
    function testAnchorRefusesASizeThatIsNotLarger() public {
        bytes32 logId = _register(0);
        bytes4 notNewer = IModelRegistry.ModelRegistryCheckpointNotNewer.selector;
        VM.startPrank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(notNewer, logId, uint64(0), uint64(0)));
        _registry.anchorCheckpoint(logId, 0, keccak256("empty"));
        _registry.anchorCheckpoint(logId, 10, keccak256("root 10"));
        VM.expectRevert(abi.encodeWithSelector(notNewer, logId, uint64(10), uint64(10)));
        _registry.anchorCheckpoint(logId, 10, keccak256("other root 10"));
        VM.expectRevert(abi.encodeWithSelector(notNewer, logId, uint64(9), uint64(10)));
        _registry.anchorCheckpoint(logId, 9, keccak256("root 9"));
        _registry.anchorCheckpoint(logId, type(uint64).max, keccak256("root max"));
        VM.expectRevert(abi.encodeWithSelector(notNewer, logId, type(uint64).max, type(uint64).max));
        _registry.anchorCheckpoint(logId, type(uint64).max, keccak256("root max"));
        VM.stopPrank();
        _check(_registry.checkpointRoot(logId, 10) == keccak256("root 10"), "a refused anchor overwrote a root");
    }

    /// @notice A zero log id or root reverts; the root's error names the log and size (checked before the log).
    function testAnchorRefusesZeroes() public {
        VM.startPrank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryZeroLogId.selector));
        _registry.anchorCheckpoint(bytes32(0), 1, keccak256("root"));
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryZeroRootHash.selector, _log(0), uint64(5)));
        _registry.anchorCheckpoint(_log(0), 5, bytes32(0));
        VM.stopPrank();
    }

    /// @notice Logs are independent: one log's size does not bound another's.
    function testLogsAreIndependent() public {
        _register(0);
        _register(1);
        VM.startPrank(_PUBLISHER);
        _registry.anchorCheckpoint(_log(0), 100, keccak256("a"));
        _registry.anchorCheckpoint(_log(1), 1, keccak256("b"));
        VM.stopPrank();
        (uint64 treeSize, , ) = _registry.latestCheckpoint(_log(0));
        _check(treeSize == 100, "log 0");
        (treeSize, , ) = _registry.latestCheckpoint(_log(1));
        _check(treeSize == 1, "log 1");
    }

    /// @notice No log id that no serving record registered can be anchored, whatever the size and root.
    /// @param logId Any log id.
    /// @param treeSize Any size.
    /// @param rootHash Any root.
    function testFuzzUnregisteredLogsAreNeverAnchored(bytes32 logId, uint64 treeSize, bytes32 rootHash) public {
        VM.assume(logId != bytes32(0) && rootHash != bytes32(0) && logId != _log(0));
        _register(0);
        VM.prank(_PUBLISHER);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryUnknownLog.selector, logId));
        _registry.anchorCheckpoint(logId, treeSize, rootHash);
        (uint64 latest, , ) = _registry.latestCheckpoint(logId);
        _check(latest == 0 && _registry.checkpointRoot(logId, treeSize) == bytes32(0), "an unknown log was anchored");
    }

    /// @notice Whoever holds no PUBLISHER_ROLE cannot anchor, even a registered log, and nothing is stored.
    /// @param caller Any account.
    /// @param treeSize Any size.
    function testFuzzOnlyPublishersAnchor(address caller, uint64 treeSize) public {
        VM.assume(caller != _PUBLISHER && treeSize != 0);
        _register(0);
        VM.prank(caller);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryUnauthorizedPublisher.selector, caller));
        _registry.anchorCheckpoint(_log(0), treeSize, keccak256("root"));
        (uint64 latest, , ) = _registry.latestCheckpoint(_log(0));
        _check(latest == 0, "anchored without the role");
    }

    /// @notice In ROFL mode only the app's instances anchor; PUBLISHER_ROLE alone is refused.
    /// @param instance The app's authorized instance.
    function testFuzzRoflModeAnchorsOnlyFromTheApp(address instance) public {
        VM.assume(instance != _PUBLISHER);
        _register(0);
        VM.etch(_SUBCALL, address(new SubcallMock()).code);
        SubcallMock(_SUBCALL).setAuthorized(_APP_ID, instance, true);
        _registry.setRoflAppId(_APP_ID);
        VM.prank(_PUBLISHER, _PUBLISHER);
        try _registry.anchorCheckpoint(_log(0), 1, keccak256("root")) {
            _check(false, "anchored from outside the ROFL app");
        } catch (bytes memory reason) {
            _check(_selectorOf(reason) == bytes4(keccak256("RoflOriginNotAuthorizedForApp()")), "unexpected revert");
        }
        VM.prank(_STRANGER, instance);
        _registry.anchorCheckpoint(_log(0), 1, keccak256("root"));
        _check(_registry.checkpointRoot(_log(0), 1) == keccak256("root"), "the ROFL instance could not anchor");
    }

    /// @notice Random serving records (new and repeated manifests naming a few logs) and anchors over those logs
    /// (sizes up, down and equal, some zero roots, time passing) keep every invariant after every step: only a log
    /// registered by a serving record is anchored, it keeps its first serving record, its latest size only grows and
    /// is the largest accepted, every accepted root reads back at its size, a refused anchor changes nothing, and the
    /// latest checkpoint's time is its block's.
    /// @param seed Drives the operations.
    /// @param steps How many operations (bounded).
    function testFuzzCheckpointsOnlyForRegisteredLogsAndOnlyGrow(uint256 seed, uint8 steps) public {
        uint256 n = 1 + (uint256(steps) % 32);
        Ghost memory ghost = Ghost({
            anchored: new Anchored[](n),
            count: 0,
            latest: new Anchored[](_LOGS),
            logManifest: new bytes32[](_LOGS),
            manifestLog: new uint256[](_MANIFESTS)
        });
        for (uint256 step = 0; step < n; ++step) {
            uint256 op = uint256(keccak256(abi.encode(seed, step)));
            VM.warp(block.timestamp + (op % 3));
            uint256 log = (op >> 8) % _LOGS;
            if ((op >> 48) % 4 == 0) {
                _servingStep(ghost, log, (op >> 56) % _MANIFESTS);
            } else {
                _anchorStep(ghost, log, op, keccak256(abi.encode("root", seed, step)));
            }
            _checkCheckpoints(ghost);
        }
    }

    /// @dev Publishes serving record `manifest` of the pool for `log`, and updates the ghost.
    function _servingStep(Ghost memory ghost, uint256 log, uint256 manifest) private {
        _publish(_serving(keccak256("model"), _manifest(manifest), _log(log)));
        if (ghost.manifestLog[manifest] != 0) return; // a recorded manifest is skipped, whatever log it names now
        ghost.manifestLog[manifest] = 1 + log;
        if (ghost.logManifest[log] == bytes32(0)) ghost.logManifest[log] = _manifest(manifest);
    }

    /// @dev Anchors `log` at a size near its latest one (or a zero root now and then), and updates the ghost.
    function _anchorStep(Ghost memory ghost, uint256 log, uint256 op, bytes32 root) private {
        uint64 previous = ghost.latest[log].treeSize;
        bool registered = ghost.logManifest[log] != bytes32(0);
        // Sizes near the latest one (smaller, equal, larger), now and then a jump.
        uint64 treeSize = _nextSize(previous, op >> 16);
        bytes32 rootHash = (op >> 40) % 8 == 0 ? bytes32(0) : root;
        VM.prank(_PUBLISHER);
        try _registry.anchorCheckpoint(_log(log), treeSize, rootHash) {
            _check(registered && treeSize > previous && rootHash != bytes32(0), "an invalid anchor was accepted");
            Anchored memory a = Anchored(log, treeSize, rootHash, uint64(block.timestamp));
            ghost.anchored[ghost.count] = a;
            ++ghost.count;
            ghost.latest[log] = a;
        } catch (bytes memory reason) {
            _check(!registered || treeSize <= previous || rootHash == bytes32(0), "a valid anchor was refused");
            bytes memory expected;
            if (rootHash == bytes32(0)) {
                expected = abi.encodeWithSelector(
                    IModelRegistry.ModelRegistryZeroRootHash.selector,
                    _log(log),
                    treeSize
                );
            } else if (!registered) {
                expected = abi.encodeWithSelector(IModelRegistry.ModelRegistryUnknownLog.selector, _log(log));
            } else {
                expected = abi.encodeWithSelector(
                    IModelRegistry.ModelRegistryCheckpointNotNewer.selector,
                    _log(log),
                    treeSize,
                    previous
                );
            }
            _check(keccak256(reason) == keccak256(expected), "unexpected revert");
        }
    }

    /// @dev A tree size near `previous`: smaller, equal or larger by a little, or a large jump.
    function _nextSize(uint64 previous, uint256 r) private pure returns (uint64) {
        uint256 choice = r % 8;
        uint256 delta = (r >> 3) % 1000;
        if (choice == 0) return previous > delta ? uint64(previous - delta) : 0;
        if (choice == 1) return previous;
        if (choice == 7) return uint64(previous + 1 + ((r >> 13) % (1 << 32)));
        return uint64(previous + 1 + delta);
    }

    /// @dev Compares every view with what the test accepted.
    function _checkCheckpoints(Ghost memory ghost) private view {
        for (uint256 i = 0; i < ghost.count; ++i) {
            Anchored memory a = ghost.anchored[i];
            _check(_registry.checkpointRoot(_log(a.log), a.treeSize) == a.rootHash, "an anchored root changed");
        }
        for (uint256 logIndex = 0; logIndex < _LOGS; ++logIndex) {
            bytes32 logId = _log(logIndex);
            _check(_registry.logOf(logId) == ghost.logManifest[logIndex], "a log's serving record differs");
            (uint64 treeSize, bytes32 rootHash, uint64 anchoredAt) = _registry.latestCheckpoint(logId);
            _check(treeSize == ghost.latest[logIndex].treeSize, "latest size differs from the largest accepted");
            _check(rootHash == ghost.latest[logIndex].rootHash, "latest root differs");
            _check(anchoredAt == ghost.latest[logIndex].anchoredAt, "latest time differs");
            _check(ghost.logManifest[logIndex] != bytes32(0) || treeSize == 0, "an unregistered log has a checkpoint");
        }
    }

    /// @dev Publishes a serving record for log `index` with manifest `index` of the pool; returns the log id.
    function _register(uint256 index) private returns (bytes32 logId) {
        logId = _log(index);
        _publish(_serving(keccak256("served model"), _manifest(index), logId));
    }

    function _publish(IModelRegistry.Attestation memory item) private {
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](1);
        items[0] = item;
        VM.prank(_PUBLISHER);
        _registry.publish(items);
    }

    function _serving(
        bytes32 modelHash,
        bytes32 manifestDigest,
        bytes32 logId
    ) private pure returns (IModelRegistry.Attestation memory) {
        return
            IModelRegistry.Attestation({
                modelHash: modelHash,
                manifestDigest: manifestDigest,
                parentModelHash: logId,
                measurementHash: keccak256("measurement"),
                policyDigest: keccak256("policy"),
                reportedTcb: 0xdb18000000000004,
                kind: _KIND_SERVING
            });
    }

    /// @dev Log ids stand for SHA-256 digests of serving keys' SPKI; any non-zero 32 bytes do here.
    function _log(uint256 index) private pure returns (bytes32) {
        return keccak256(abi.encode("serving key", index));
    }

    function _manifest(uint256 index) private pure returns (bytes32) {
        return keccak256(abi.encode("serving manifest", index));
    }
}
