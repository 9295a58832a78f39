import { LightningElement, api } from 'lwc';

/**
 * A refusal or failure as dealGovernance shows it (`problemOf` in dealGovernance's Apex error
 * handling): its title, detail and each field's problem, never raw JSON; and a Retry button when
 * trying again may help, which sends a `retry` event. Every tab shows its problems with it.
 */
export default class DealGovernanceProblem extends LightningElement {
    @api problem;

    handleRetry() {
        this.dispatchEvent(new CustomEvent('retry'));
    }
}
