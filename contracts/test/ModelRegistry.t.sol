// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

// Test-only code: assertion messages read better than they pack, and ghost structs live in memory.
// solhint-disable gas-small-strings, gas-struct-packing

import {IModelRegistry} from "../IModelRegistry.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {CheatsTest} from "./Cheats.sol";
import {SubcallMock} from "./SubcallMock.sol";

/// @title Fuzz tests of the registry's invariants
/// @notice A recorded manifest never changes model, the count per model only grows, a revoked record stays revoked,
/// and nobody without the role (or, in ROFL mode, outside the ROFL app) can publish. The run count comes from
/// hardhat.config.ts (PROVENANT_FUZZ_RUNS).
contract ModelRegistryFuzzTest is CheatsTest {
    uint256 private constant _MODELS = 3;
    uint256 private constant _DIGESTS = 6;
    address private constant _SUBCALL = 0x0100000000000000000000000000000000000103;
    bytes21 private constant _APP_ID = bytes21(keccak256("provenant test app"));

    ModelRegistry private _registry;
    address private immutable _PUBLISHER = address(0xB0B);

    /// @dev What the test expects of one digest, tracked beside the contract.
    struct Ghost {
        bool recorded;
        bool revoked;
        uint256 model;
        uint64 publishedAt;
    }

    /// @notice Deploys a registry with this contract as admin, publisher and revoker, and one more publisher.
    function setUp() public {
        _registry = new ModelRegistry(address(this), 0);
        _registry.grantRole(_registry.PUBLISHER_ROLE(), address(this));
        _registry.grantRole(_registry.PUBLISHER_ROLE(), _PUBLISHER);
        _registry.grantRole(_registry.REVOKER_ROLE(), address(this));
    }

    /// @notice Random sequences of publishes (batches mixing new and known digests, several models) and revocations
    /// keep every invariant after every step.
    /// @param seed Drives the operations.
    /// @param steps How many operations (bounded).
    function testFuzzInvariantsHoldOverRandomOperations(uint256 seed, uint8 steps) public {
        uint256 n = 1 + (uint256(steps) % 24);
        Ghost[] memory ghosts = new Ghost[](_DIGESTS);
        uint256[] memory counts = new uint256[](_MODELS);
        for (uint256 step = 0; step < n; ++step) {
            uint256 op = uint256(keccak256(abi.encode(seed, step)));
            VM.warp(1_700_000_000 + step * 7);
            if (op % 4 == 0) {
                _revokeStep(op, ghosts);
            } else {
                _publishStep(op, ghosts, counts);
            }
            _checkState(ghosts, counts);
        }
    }

    /// @notice Whoever holds no PUBLISHER_ROLE cannot publish, and nothing is recorded.
    /// @param caller Any account.
    /// @param modelHash Any model hash.
    /// @param manifestDigest Any digest.
    function testFuzzNobodyWithoutTheRoleCanPublish(address caller, bytes32 modelHash, bytes32 manifestDigest) public {
        VM.assume(caller != address(this) && caller != _PUBLISHER);
        VM.assume(modelHash != bytes32(0) && manifestDigest != bytes32(0));
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](1);
        items[0] = _attestation(modelHash, manifestDigest);
        VM.prank(caller);
        try _registry.publish(items) {
            _check(false, "publish without the role succeeded");
        } catch (bytes memory reason) {
            _check(
                keccak256(reason) ==
                    keccak256(
                        abi.encodeWithSelector(IModelRegistry.ModelRegistryUnauthorizedPublisher.selector, caller)
                    ),
                "unexpected revert"
            );
        }
        _check(!_registry.isRecorded(modelHash, manifestDigest), "recorded without the role");
        _check(_registry.manifestCount(modelHash) == 0, "count grew without the role");
    }

    /// @notice In ROFL mode no origin outside the app can publish, even with PUBLISHER_ROLE; an instance can.
    /// @param origin Any transaction origin.
    /// @param instance The app's authorized instance.
    /// @param manifestDigest Any digest.
    function testFuzzRoflModeAcceptsOnlyTheApp(address origin, address instance, bytes32 manifestDigest) public {
        VM.assume(origin != instance && manifestDigest != bytes32(0));
        VM.etch(_SUBCALL, address(new SubcallMock()).code);
        SubcallMock(_SUBCALL).setAuthorized(_APP_ID, instance, true);
        _registry.setRoflAppId(_APP_ID);
        bytes32 modelHash = keccak256(abi.encode(manifestDigest));
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](1);
        items[0] = _attestation(modelHash, manifestDigest);

        VM.prank(_PUBLISHER, origin);
        try _registry.publish(items) {
            _check(false, "publish from outside the ROFL app succeeded");
        } catch (bytes memory reason) {
            _check(_selectorOf(reason) == bytes4(keccak256("RoflOriginNotAuthorizedForApp()")), "unexpected revert");
        }
        _check(_registry.manifestCount(modelHash) == 0, "count grew outside the ROFL app");

        VM.prank(origin, instance);
        _registry.publish(items);
        _check(_registry.isRecorded(modelHash, manifestDigest), "the ROFL instance could not publish");
    }

    /// @dev Publishes a batch of 1-3 items drawn from the model and digest pools and updates the ghosts.
    function _publishStep(uint256 op, Ghost[] memory ghosts, uint256[] memory counts) private {
        uint256 size = 1 + ((op >> 8) % 3);
        IModelRegistry.Attestation[] memory items = new IModelRegistry.Attestation[](size);
        uint256[] memory models = new uint256[](size);
        uint256[] memory digests = new uint256[](size);
        for (uint256 i = 0; i < size; ++i) {
            models[i] = (op >> (16 + i * 16)) % _MODELS;
            digests[i] = (op >> (24 + i * 16)) % _DIGESTS;
            items[i] = _attestation(_model(models[i]), _digest(digests[i]));
        }
        _registry.publish(items);
        for (uint256 i = 0; i < size; ++i) {
            Ghost memory ghost = ghosts[digests[i]];
            if (ghost.recorded) continue;
            ghost.recorded = true;
            ghost.model = models[i];
            ghost.publishedAt = uint64(block.timestamp);
            ++counts[models[i]];
        }
    }

    /// @dev Revokes a digest from the pool; unknown and already revoked ones must revert with their errors.
    function _revokeStep(uint256 op, Ghost[] memory ghosts) private {
        uint256 index = (op >> 8) % _DIGESTS;
        bytes32 digest = _digest(index);
        Ghost memory ghost = ghosts[index];
        try _registry.revoke(digest, "fuzz") {
            _check(ghost.recorded && !ghost.revoked, "revoke succeeded on an unknown or revoked manifest");
            ghost.revoked = true;
        } catch (bytes memory reason) {
            bytes4 expected =
                !ghost.recorded
                    ? IModelRegistry.ModelRegistryUnknownManifest.selector
                    : IModelRegistry.ModelRegistryAlreadyRevoked.selector;
            _check(ghost.recorded == ghost.revoked || !ghost.recorded, "revoke failed on a live record");
            _check(keccak256(reason) == keccak256(abi.encodeWithSelector(expected, digest)), "unexpected revert");
        }
    }

    /// @dev Compares every lookup with the ghosts.
    function _checkState(Ghost[] memory ghosts, uint256[] memory counts) private view {
        for (uint256 d = 0; d < _DIGESTS; ++d) {
            Ghost memory ghost = ghosts[d];
            (bytes32 modelHash, uint64 publishedAt, uint8 kind, bool revoked) = _registry.recordOf(_digest(d));
            if (!ghost.recorded) {
                _check(kind == 0 && modelHash == bytes32(0), "an unpublished manifest has a record");
                continue;
            }
            _check(modelHash == _model(ghost.model), "a recorded manifest changed model");
            _check(publishedAt == ghost.publishedAt, "a record's time changed");
            _check(kind == 1, "a record's kind changed");
            _check(revoked == ghost.revoked, "revocation state differs (a revoked record must stay revoked)");
            _check(_registry.isRecorded(modelHash, _digest(d)), "isRecorded is false for a record");
        }
        for (uint256 m = 0; m < _MODELS; ++m) {
            bytes32 modelHash = _model(m);
            uint256 count = _registry.manifestCount(modelHash);
            _check(count == counts[m], "count per model differs from the published manifests");
            bytes32[] memory page = _registry.manifestsOf(modelHash, 0, type(uint256).max);
            _check(page.length == count, "manifestsOf length differs from manifestCount");
            _check(
                _registry.latestManifest(modelHash) == (count == 0 ? bytes32(0) : page[count - 1]),
                "latest is not the last"
            );
            for (uint256 i = 0; i < count; ++i) {
                (bytes32 owner, , , ) = _registry.recordOf(page[i]);
                _check(owner == modelHash, "a model lists a manifest of another model");
            }
        }
    }

    function _attestation(
        bytes32 modelHash,
        bytes32 manifestDigest
    ) private pure returns (IModelRegistry.Attestation memory) {
        return
            IModelRegistry.Attestation({
                modelHash: modelHash,
                manifestDigest: manifestDigest,
                parentModelHash: keccak256("base model"),
                measurementHash: keccak256("measurement"),
                policyDigest: keccak256("policy"),
                reportedTcb: 0xdb18000000000004,
                kind: 1
            });
    }

    function _model(uint256 index) private pure returns (bytes32) {
        return keccak256(abi.encode("model", index));
    }

    function _digest(uint256 index) private pure returns (bytes32) {
        return keccak256(abi.encode("manifest", index));
    }
}
