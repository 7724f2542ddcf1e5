// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

/// @title The few Foundry cheatcodes the registry's Solidity tests use
/// @notice Hardhat 3's Solidity test runner serves the standard cheatcodes at the usual address; the npm `forge-std`
/// package is too old for this compiler setup, so the tests declare only what they call.
interface IVm {
    /// @notice Skips the current fuzz input when `condition` is false.
    /// @param condition Whether the input is usable.
    function assume(bool condition) external pure;

    /// @notice Makes the next call come from `sender` with `origin` as tx.origin.
    /// @param sender The msg.sender of the next call.
    /// @param origin The tx.origin of the next call.
    function prank(address sender, address origin) external;

    /// @notice Makes the next call come from `sender`.
    /// @param sender The msg.sender of the next call.
    function prank(address sender) external;

    /// @notice Puts `code` at `target` (runtime bytecode).
    /// @param target The account.
    /// @param code The runtime bytecode.
    function etch(address target, bytes calldata code) external;

    /// @notice Sets block.timestamp.
    /// @param timestamp The new timestamp.
    function warp(uint256 timestamp) external;

    /// @notice Makes every following call come from `sender` until `stopPrank`.
    /// @param sender The msg.sender of the following calls.
    function startPrank(address sender) external;

    /// @notice Ends `startPrank`.
    function stopPrank() external;

    /// @notice Expects the next call to revert with exactly `revertData` (selector and arguments).
    /// @param revertData The ABI-encoded custom error.
    function expectRevert(bytes calldata revertData) external;

    /// @notice Expects the next event emitted by the test to be emitted by `emitter` during the next call, with the
    /// topics and data selected by the flags equal to the test's.
    /// @param checkTopic1 Compare topic 1.
    /// @param checkTopic2 Compare topic 2.
    /// @param checkTopic3 Compare topic 3.
    /// @param checkData Compare the data.
    /// @param emitter The contract that must emit it.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
}

/// @title Base for the registry's Solidity tests: the cheatcode handle and assertions with custom errors
abstract contract CheatsTest {
    /// @notice An assertion failed; `what` says which.
    error AssertionFailed(string what);

    /// @dev keccak256("hevm cheat code"), where every Foundry-compatible runner serves the cheatcodes.
    IVm internal constant VM = IVm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev Fails with `what` unless `condition` holds.
    function _check(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what);
    }

    /// @dev Expects the next call to emit exactly the event the test emits next, from `emitter`.
    function _expectEvent(address emitter) internal {
        VM.expectEmit(true, true, true, true, emitter);
    }

    /// @dev The 4-byte selector at the start of revert data, zero when shorter.
    function _selectorOf(bytes memory reason) internal pure returns (bytes4 selector) {
        if (reason.length < 4) return bytes4(0);
        // solhint-disable-next-line no-inline-assembly
        assembly {
            selector := mload(add(reason, 32))
        }
    }
}
