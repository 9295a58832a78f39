import '@lwc/synthetic-shadow';
import { createElement } from 'lwc';
import DealGovernance from 'c/dealGovernance';

const element = createElement('c-deal-governance', { is: DealGovernance });
element.recordId = '0065g00000Gov01AAB';
document.getElementById('root').appendChild(element);

// `index.html#what-if` (or `#prepare`, `#submit`, `#review`) opens that tab once the card has
// loaded; on What-if the discount is typed as 10 so the re-check and its bar show.
const tab = window.location.hash.slice(1);
if (tab) {
    const typeDiscount = () => {
        // The tab draws its inputs once it is open.
        const input = element.shadowRoot.querySelector('lightning-input[data-term="discount_pct"]');
        if (!input) {
            window.setTimeout(typeDiscount, 50);
            return;
        }
        input.dispatchEvent(new CustomEvent('change', { detail: { value: '10' } }));
    };
    const open = () => {
        const tabset = element.shadowRoot.querySelector('lightning-tabset');
        if (!tabset) {
            window.setTimeout(open, 50);
            return;
        }
        tabset.activeTabValue = tab;
        if (tab === 'what-if') {
            window.setTimeout(typeDiscount, 50);
        }
    };
    open();
}
