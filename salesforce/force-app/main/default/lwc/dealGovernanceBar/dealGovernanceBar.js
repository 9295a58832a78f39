import { LightningElement, api } from 'lwc';

/**
 * A number term's bar, as `barOf` (dealGovernance/format.js) describes it: the band, each
 * escalation tier, beyond the walk-away, the walk-away and value markers, and the ladder in
 * words. The Now and What-if tabs both draw their bars with it.
 */
export default class DealGovernanceBar extends LightningElement {
    @api bar;
}
