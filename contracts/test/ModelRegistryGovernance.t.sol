// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

// Test-only code: assertion messages read better than they pack, ghost structs live in memory, a refused call is
// an expected outcome (empty catch), and the checks compare as the rules are stated.
// solhint-disable gas-small-strings, gas-struct-packing, no-empty-blocks, gas-strict-inequalities

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";

import {IModelRegistry} from "../IModelRegistry.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {CheatsTest} from "./Cheats.sol";

/// @title Tests of the registry's governance rules
/// @notice One admin, replaced only in two steps after the delay set at deployment; ROFL mode one-way (an app id is
/// set once, immediately, and afterwards only replaced by another non-zero id after the same delay, announced by an
/// event). Each rule has a unit test; fuzzed sequences of every governance call, from the admin and from strangers,
/// check that no path clears the app id, changes it early or unannounced, or breaks the admin rules.
contract ModelRegistryGovernanceTest is CheatsTest {
    uint48 private constant _DELAY = 2 days;
    address private constant _ADMIN = address(0xA11CE);
    address private constant _NEXT_ADMIN = address(0xB0B);
    address private constant _STRANGER = address(0xBAD);
    bytes21 private constant _APP_ID = bytes21(keccak256("provenant test app"));
    bytes21 private constant _OTHER_APP_ID = bytes21(keccak256("provenant other app"));
    bytes32 private constant _ADMIN_ROLE = 0x00;

    ModelRegistry private _registry;

    /// @notice Deploys a registry administered by `_ADMIN` with a two-day admin delay.
    function setUp() public {
        VM.warp(1_700_000_000);
        _registry = new ModelRegistry(_ADMIN, _DELAY);
    }

    // ---------------------------------------------------------------- the admin (AccessControlDefaultAdminRules)

    /// @notice The constructor sets the one admin and the delay.
    function testConstructorSetsTheAdminAndTheDelay() public view {
        _check(_registry.defaultAdmin() == _ADMIN, "defaultAdmin");
        _check(_registry.owner() == _ADMIN, "owner");
        _check(_registry.hasRole(_ADMIN_ROLE, _ADMIN), "admin role");
        _check(_registry.defaultAdminDelay() == _DELAY, "delay");
        _check(_registry.roflAppId() == bytes21(0), "ROFL mode starts off");
        _check(_registry.supportsInterface(type(IAccessControlDefaultAdminRules).interfaceId), "ERC-165");
        _check(_registry.supportsInterface(type(IModelRegistry).interfaceId), "ERC-165 IModelRegistry");
    }

    /// @notice A zero admin is refused with the registry's own error.
    function testConstructorRefusesAZeroAdmin() public {
        try new ModelRegistry(address(0), _DELAY) {
            _check(false, "deployed with a zero admin");
        } catch (bytes memory reason) {
            _check(
                keccak256(reason) == keccak256(abi.encodeWithSelector(IModelRegistry.ModelRegistryZeroAdmin.selector)),
                "unexpected revert"
            );
        }
    }

    /// @notice DEFAULT_ADMIN_ROLE cannot be granted or revoked directly, even by the admin.
    function testAdminRoleCannotBeGrantedOrRevokedDirectly() public {
        bytes memory enforced = abi.encodeWithSelector(
            IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminRules.selector
        );
        VM.prank(_ADMIN);
        VM.expectRevert(enforced);
        _registry.grantRole(_ADMIN_ROLE, _NEXT_ADMIN);
        VM.prank(_ADMIN);
        VM.expectRevert(enforced);
        _registry.revokeRole(_ADMIN_ROLE, _ADMIN);
    }

    /// @notice A transfer is announced, cannot be accepted before the delay nor by anyone else, then completes.
    function testAdminTransferTakesTwoStepsAndTheDelay() public {
        uint48 schedule = uint48(block.timestamp) + _DELAY;
        _expectEvent(address(_registry));
        emit IAccessControlDefaultAdminRules.DefaultAdminTransferScheduled(_NEXT_ADMIN, schedule);
        VM.prank(_ADMIN);
        _registry.beginDefaultAdminTransfer(_NEXT_ADMIN);
        (address pending, uint48 pendingSchedule) = _registry.pendingDefaultAdmin();
        _check(pending == _NEXT_ADMIN && pendingSchedule == schedule, "pendingDefaultAdmin");

        VM.prank(_NEXT_ADMIN);
        VM.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminDelay.selector,
                schedule
            )
        );
        _registry.acceptDefaultAdminTransfer();

        VM.warp(uint256(schedule) + 1);
        VM.prank(_STRANGER);
        VM.expectRevert(
            abi.encodeWithSelector(IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, _STRANGER)
        );
        _registry.acceptDefaultAdminTransfer();

        VM.prank(_NEXT_ADMIN);
        _registry.acceptDefaultAdminTransfer();
        _check(_registry.defaultAdmin() == _NEXT_ADMIN, "new admin");
        _check(!_registry.hasRole(_ADMIN_ROLE, _ADMIN), "the old admin kept the role");
        _check(_registry.hasRole(_ADMIN_ROLE, _NEXT_ADMIN), "the new admin lacks the role");
    }

    /// @notice Shortening the delay waits the difference, so no transfer can be made faster than the old delay.
    function testShorteningTheDelayWaitsTheDifference() public {
        VM.prank(_ADMIN);
        _registry.changeDefaultAdminDelay(0);
        (uint48 newDelay, uint48 effectAt) = _registry.pendingDefaultAdminDelay();
        _check(newDelay == 0 && effectAt == uint48(block.timestamp) + _DELAY, "pending delay");
        _check(_registry.defaultAdminDelay() == _DELAY, "the delay changed at once");
        VM.warp(uint256(effectAt) + 1);
        _check(_registry.defaultAdminDelay() == 0, "the delay did not change after the wait");
    }

    /// @notice Only the admin starts a transfer or changes the delay.
    function testOnlyTheAdminStartsATransfer() public {
        bytes memory unauthorized = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector,
            _STRANGER,
            _ADMIN_ROLE
        );
        VM.prank(_STRANGER);
        VM.expectRevert(unauthorized);
        _registry.beginDefaultAdminTransfer(_STRANGER);
        VM.prank(_STRANGER);
        VM.expectRevert(unauthorized);
        _registry.changeDefaultAdminDelay(0);
    }

    // ---------------------------------------------------------------- ROFL mode, one-way

    /// @notice The first app id takes effect at once and is announced.
    function testFirstAppIdIsImmediate() public {
        _expectEvent(address(_registry));
        emit IModelRegistry.RoflAppIdChanged(bytes21(0), _APP_ID);
        VM.prank(_ADMIN);
        _registry.setRoflAppId(_APP_ID);
        _check(_registry.roflAppId() == _APP_ID, "app id not set");
    }

    /// @notice Zero is never accepted as an app id, neither first nor as a replacement.
    function testZeroAppIdIsRefused() public {
        bytes memory zero = abi.encodeWithSelector(IModelRegistry.ModelRegistryZeroRoflAppId.selector);
        VM.prank(_ADMIN);
        VM.expectRevert(zero);
        _registry.setRoflAppId(bytes21(0));
        _setAppId();
        VM.prank(_ADMIN);
        VM.expectRevert(zero);
        _registry.proposeRoflAppId(bytes21(0));
    }

    /// @notice Once set, `setRoflAppId` refuses: a replacement must be proposed and wait.
    function testSetRefusesOnceAnAppIdIsSet() public {
        _setAppId();
        VM.prank(_ADMIN);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryRoflAppIdAlreadySet.selector, _APP_ID));
        _registry.setRoflAppId(_OTHER_APP_ID);
    }

    /// @notice Proposing needs ROFL mode on and a different id.
    function testProposeNeedsAnAppIdAndADifferentOne() public {
        VM.prank(_ADMIN);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryRoflAppIdNotSet.selector));
        _registry.proposeRoflAppId(_OTHER_APP_ID);
        _setAppId();
        VM.prank(_ADMIN);
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelRegistryRoflAppIdUnchanged.selector, _APP_ID));
        _registry.proposeRoflAppId(_APP_ID);
    }

    /// @notice A replacement is announced, refused before its time, and takes effect when accepted after it.
    function testReplacementWaitsTheDelay() public {
        _setAppId();
        uint48 effectiveAt = uint48(block.timestamp) + _DELAY;
        _expectEvent(address(_registry));
        emit IModelRegistry.RoflAppIdChangeScheduled(_OTHER_APP_ID, effectiveAt);
        VM.prank(_ADMIN);
        _registry.proposeRoflAppId(_OTHER_APP_ID);
        (bytes21 pending, uint48 pendingAt) = _registry.pendingRoflAppId();
        _check(pending == _OTHER_APP_ID && pendingAt == effectiveAt, "pendingRoflAppId");

        VM.warp(uint256(effectiveAt) - 1);
        VM.prank(_ADMIN);
        VM.expectRevert(
            abi.encodeWithSelector(
                IModelRegistry.ModelRegistryRoflAppIdChangeNotReady.selector,
                effectiveAt,
                uint256(effectiveAt) - 1
            )
        );
        _registry.acceptRoflAppId();
        _check(_registry.roflAppId() == _APP_ID, "changed before its time");

        VM.warp(effectiveAt);
        _expectEvent(address(_registry));
        emit IModelRegistry.RoflAppIdChanged(_APP_ID, _OTHER_APP_ID);
        VM.prank(_ADMIN);
        _registry.acceptRoflAppId();
        _check(_registry.roflAppId() == _OTHER_APP_ID, "not replaced");
        (pending, pendingAt) = _registry.pendingRoflAppId();
        _check(pending == bytes21(0) && pendingAt == 0, "still pending after acceptance");
    }

    /// @notice A pending change can be cancelled (announced), after which nothing is pending.
    function testPendingChangeCanBeCancelled() public {
        _setAppId();
        VM.prank(_ADMIN);
        _registry.proposeRoflAppId(_OTHER_APP_ID);
        _expectEvent(address(_registry));
        emit IModelRegistry.RoflAppIdChangeCanceled(_OTHER_APP_ID);
        VM.prank(_ADMIN);
        _registry.cancelRoflAppId();
        VM.warp(block.timestamp + _DELAY + 1);
        bytes memory none = abi.encodeWithSelector(IModelRegistry.ModelRegistryNoPendingRoflAppId.selector);
        VM.prank(_ADMIN);
        VM.expectRevert(none);
        _registry.acceptRoflAppId();
        VM.prank(_ADMIN);
        VM.expectRevert(none);
        _registry.cancelRoflAppId();
        _check(_registry.roflAppId() == _APP_ID, "cancelled change took effect");
    }

    /// @notice A newer proposal replaces the pending one (which is announced as cancelled) and restarts the wait.
    function testNewerProposalReplacesThePendingOne() public {
        _setAppId();
        VM.prank(_ADMIN);
        _registry.proposeRoflAppId(_OTHER_APP_ID);
        VM.warp(block.timestamp + 1 days);
        bytes21 third = bytes21(keccak256("third app"));
        _expectEvent(address(_registry));
        emit IModelRegistry.RoflAppIdChangeCanceled(_OTHER_APP_ID);
        VM.prank(_ADMIN);
        _registry.proposeRoflAppId(third);
        (bytes21 pending, uint48 effectiveAt) = _registry.pendingRoflAppId();
        _check(pending == third && effectiveAt == uint48(block.timestamp) + _DELAY, "the wait did not restart");
    }

    /// @notice The delay of a replacement is the admin delay in force when it is proposed.
    function testReplacementDelayFollowsTheAdminDelay() public {
        _setAppId();
        VM.prank(_ADMIN);
        _registry.changeDefaultAdminDelay(1 hours);
        VM.warp(block.timestamp + _DELAY + 1); // decreasing waits the difference
        _check(_registry.defaultAdminDelay() == 1 hours, "delay not decreased");
        VM.prank(_ADMIN);
        _registry.proposeRoflAppId(_OTHER_APP_ID);
        (, uint48 effectiveAt) = _registry.pendingRoflAppId();
        _check(effectiveAt == uint48(block.timestamp) + 1 hours, "replacement delay");
    }

    /// @notice Only the admin sets, proposes, accepts or cancels.
    function testOnlyTheAdminGovernsTheAppId() public {
        bytes memory unauthorized = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector,
            _STRANGER,
            _ADMIN_ROLE
        );
        VM.startPrank(_STRANGER);
        VM.expectRevert(unauthorized);
        _registry.setRoflAppId(_APP_ID);
        VM.expectRevert(unauthorized);
        _registry.proposeRoflAppId(_APP_ID);
        VM.expectRevert(unauthorized);
        _registry.acceptRoflAppId();
        VM.expectRevert(unauthorized);
        _registry.cancelRoflAppId();
        VM.stopPrank();
    }

    // ---------------------------------------------------------------- fuzzed invariants

    /// @dev Accounts the fuzzed sequences act as.
    function _actor(uint256 index) private pure returns (address) {
        if (index == 0) return _ADMIN;
        if (index == 1) return _NEXT_ADMIN;
        if (index == 2) return address(0xC0C0);
        return _STRANGER;
    }

    /// @dev Who makes the call of step `op`: half the time the current admin (so that governance calls succeed often
    /// enough to matter), otherwise one of the actors.
    function _pickActor(uint256 op) private view returns (address) {
        uint256 r = (op >> 8) % 8;
        return r < 4 ? _registry.defaultAdmin() : _actor(r - 4);
    }

    /// @dev Accounts an admin transfer is started towards: the actors, or zero (the first step of renouncing).
    function _target(uint256 index) private pure returns (address) {
        return index == 4 ? address(0) : _actor(index);
    }

    /// @dev App ids the fuzzed sequences choose from, zero included.
    function _appId(uint256 index) private pure returns (bytes21) {
        if (index == 0) return bytes21(0);
        return bytes21(keccak256(abi.encode("app", index)));
    }

    /// @notice Random sequences of every governance call (set, propose, accept, cancel, admin transfers, delay
    /// changes, renouncing), from the admin and others, with time passing: once set, the app id is never zero again,
    /// and it only ever changes to the pending id, at or after its announced time, by the admin.
    /// @param seed Drives the operations.
    /// @param steps How many operations (bounded).
    function testFuzzNoPathClearsTheRoflAppId(uint256 seed, uint8 steps) public {
        uint256 n = 1 + (uint256(steps) % 48);
        for (uint256 step = 0; step < n; ++step) {
            uint256 op = uint256(keccak256(abi.encode(seed, step)));
            bytes21 appIdBefore = _registry.roflAppId();
            (bytes21 pendingBefore, uint48 effectiveAtBefore) = _registry.pendingRoflAppId();
            address adminBefore = _registry.defaultAdmin();
            address actor = _pickActor(op);
            bool ok = _governanceStep(op, actor);
            bytes21 appIdAfter = _registry.roflAppId();
            if (appIdBefore != bytes21(0)) _check(appIdAfter != bytes21(0), "the app id was cleared");
            if (appIdAfter != appIdBefore) {
                _check(ok && actor == adminBefore, "the app id changed by someone other than the admin");
                if (appIdBefore != bytes21(0)) {
                    _check(appIdAfter == pendingBefore, "the app id changed to an id that was not announced");
                    _check(block.timestamp >= effectiveAtBefore, "the app id changed before its time");
                }
            }
        }
    }

    /// @dev One governance call chosen by `op`, made by `actor`; returns whether it succeeded. The ROFL calls and
    /// time passing are weighted up so that set → propose → wait → accept sequences happen in most runs.
    function _governanceStep(uint256 op, address actor) private returns (bool ok) {
        uint256 kind = op % 16;
        bytes21 candidate = _appId((op >> 16) % 4);
        if (kind >= 13) {
            VM.warp(block.timestamp + ((op >> 24) % (3 days)));
            return true;
        }
        VM.prank(actor);
        if (kind < 2) {
            try _registry.setRoflAppId(candidate) {
                ok = true;
            } catch {}
        } else if (kind < 5) {
            try _registry.proposeRoflAppId(candidate) {
                ok = true;
            } catch {}
        } else if (kind < 8) {
            try _registry.acceptRoflAppId() {
                ok = true;
            } catch {}
        } else if (kind == 8) {
            try _registry.cancelRoflAppId() {
                ok = true;
            } catch {}
        } else if (kind == 9) {
            try _registry.beginDefaultAdminTransfer(_target((op >> 32) % 5)) {
                ok = true;
            } catch {}
        } else if (kind == 10) {
            try _registry.acceptDefaultAdminTransfer() {
                ok = true;
            } catch {}
        } else if (kind == 11) {
            try _registry.changeDefaultAdminDelay(uint48((op >> 40) % (3 days))) {
                ok = true;
            } catch {}
        } else {
            try _registry.renounceRole(_ADMIN_ROLE, actor) {
                ok = true;
            } catch {}
        }
    }

    /// @notice Random sequences of admin calls keep the admin rules: exactly the default admin holds
    /// DEFAULT_ADMIN_ROLE, nobody gets it by grantRole, and the admin changes only to the announced account, by its
    /// own acceptance, strictly after the announced schedule, which was the delay after the announcement; renouncing
    /// (the admin going to zero) needs an announced transfer to zero whose schedule has passed.
    /// @param seed Drives the operations.
    /// @param steps How many operations (bounded).
    function testFuzzAdminRulesHold(uint256 seed, uint8 steps) public {
        uint256 n = 1 + (uint256(steps) % 32);
        for (uint256 step = 0; step < n; ++step) {
            uint256 op = uint256(keccak256(abi.encode(seed, step)));
            address adminBefore = _registry.defaultAdmin();
            (address pendingBefore, uint48 scheduleBefore) = _registry.pendingDefaultAdmin();
            uint48 delayBefore = _registry.defaultAdminDelay();
            address actor = _pickActor(op);
            bool ok = _adminStep(op, actor);
            address adminAfter = _registry.defaultAdmin();
            if (adminAfter != adminBefore && adminAfter == address(0)) {
                _check(ok && actor == adminBefore, "the admin was removed by someone else");
                _check(pendingBefore == address(0) && scheduleBefore != 0, "renounced without announcing it");
                _check(block.timestamp > scheduleBefore, "renounced before its schedule");
            } else if (adminAfter != adminBefore) {
                _check(ok && actor == pendingBefore, "the admin changed without the announced account accepting");
                _check(adminAfter == pendingBefore, "the admin changed to an account that was not announced");
                _check(block.timestamp > scheduleBefore, "the admin changed before its schedule");
            }
            (address pendingAfter, uint48 scheduleAfter) = _registry.pendingDefaultAdmin();
            if (ok && (op % 7 == 0) && pendingAfter != address(0)) {
                _check(scheduleAfter == uint48(block.timestamp) + delayBefore, "a transfer was scheduled early");
            }
            _checkOneAdmin();
        }
    }

    /// @dev One admin-rules call chosen by `op`, made by `actor`; returns whether it succeeded.
    function _adminStep(uint256 op, address actor) private returns (bool ok) {
        uint256 kind = op % 7;
        address target = _target((op >> 32) % 5);
        if (kind == 5) {
            VM.warp(block.timestamp + ((op >> 24) % (3 days)));
            return true;
        }
        VM.prank(actor);
        if (kind == 0) {
            try _registry.beginDefaultAdminTransfer(target) {
                ok = true;
            } catch {}
        } else if (kind == 1) {
            try _registry.acceptDefaultAdminTransfer() {
                ok = true;
            } catch {}
        } else if (kind == 2) {
            try _registry.grantRole(_ADMIN_ROLE, target) {
                _check(false, "grantRole(DEFAULT_ADMIN_ROLE) succeeded");
            } catch {}
        } else if (kind == 3) {
            try _registry.cancelDefaultAdminTransfer() {
                ok = true;
            } catch {}
        } else if (kind == 6) {
            try _registry.renounceRole(_ADMIN_ROLE, actor) {
                ok = true;
            } catch {}
        } else {
            try _registry.changeDefaultAdminDelay(uint48((op >> 40) % (3 days))) {
                ok = true;
            } catch {}
        }
    }

    /// @dev Among the actors, exactly the default admin holds DEFAULT_ADMIN_ROLE.
    function _checkOneAdmin() private view {
        address admin = _registry.defaultAdmin();
        for (uint256 i = 0; i < 4; ++i) {
            address account = _actor(i);
            _check(_registry.hasRole(_ADMIN_ROLE, account) == (account == admin), "DEFAULT_ADMIN_ROLE off its admin");
        }
    }

    /// @dev Switches ROFL mode on with `_APP_ID`.
    function _setAppId() private {
        VM.prank(_ADMIN);
        _registry.setRoflAppId(_APP_ID);
    }
}
