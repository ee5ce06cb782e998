/**
 * The EK trust bundle trustroot ships: empty on purpose. Which manufacturers'
 * CAs a fleet trusts is the operator's decision, made with certificates the
 * operator fetched and checked (see README.md in this folder); nothing here
 * trusts a vendor by default, and nothing is read from disk.
 */
export const DEFAULT_EK_ROOTS_PEM: readonly string[] = [];
