// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.24;

/// @title Stand-in for Sapphire's SUBCALL precompile (0x0100000000000000000000000000000000000103), tests only
/// @notice Plain Hardhat has no Sapphire precompiles. Tests put this contract's runtime code at the SUBCALL address
/// with `hardhat_setCode` (or `vm.etch`), then say which transaction origins count as instances of which ROFL app.
/// @dev Follows the wire format that @oasisprotocol/sapphire-contracts' Subcall library speaks: the call data is
/// `abi.encode(string method, bytes body)` with no selector, the answer `abi.encode(uint64 status, bytes data)`.
/// For `rofl.IsAuthorizedOrigin` the body is the CBOR byte string of the 21-byte app id (0x55 ‖ appId) and the data
/// the CBOR boolean 0xf5 (true) or 0xf4 (false), status 0. A body that does not decode gives a non-zero status, and
/// so does an unknown method, as the runtime answers with a module error code there.
contract SubcallMock {
    string private constant _IS_AUTHORIZED_ORIGIN = "rofl.IsAuthorizedOrigin";
    /// @dev Status the runtime uses for a malformed request (module "core", code 1, invalid argument).
    uint64 private constant _STATUS_INVALID_ARGUMENT = 1;
    /// @dev Status the mock gives for a method it does not implement.
    uint64 private constant _STATUS_UNKNOWN_METHOD = 2;

    mapping(bytes21 appId => mapping(address origin => bool)) private _authorized;

    /// @notice Makes `origin` an authorized instance of `appId`, or stops it being one.
    /// @param appId The ROFL app id.
    /// @param origin The transaction origin (the instance's key).
    /// @param authorized Whether the origin counts as an instance of the app.
    function setAuthorized(bytes21 appId, address origin, bool authorized) external {
        _authorized[appId][origin] = authorized;
    }

    /// @notice Whether `origin` is set as an authorized instance of `appId`.
    /// @param appId The ROFL app id.
    /// @param origin The transaction origin.
    /// @return True when authorized.
    function isAuthorized(bytes21 appId, address origin) external view returns (bool) {
        return _authorized[appId][origin];
    }

    /// @notice Answers a subcall the way the precompile does.
    // solhint-disable-next-line no-complex-fallback
    fallback(bytes calldata input) external returns (bytes memory) {
        (string memory method, bytes memory body) = abi.decode(input, (string, bytes));
        if (keccak256(bytes(method)) != keccak256(bytes(_IS_AUTHORIZED_ORIGIN))) {
            return abi.encode(_STATUS_UNKNOWN_METHOD, bytes("unknown method"));
        }
        if (body.length != 22 || body[0] != 0x55) {
            return abi.encode(_STATUS_INVALID_ARGUMENT, bytes("malformed app id"));
        }
        bytes21 appId;
        // solhint-disable-next-line no-inline-assembly
        assembly {
            appId := mload(add(body, 33))
        }
        // solhint-disable-next-line avoid-tx-origin
        bool authorized = _authorized[appId][tx.origin];
        return abi.encode(uint64(0), authorized ? bytes(hex"f5") : bytes(hex"f4"));
    }
}
