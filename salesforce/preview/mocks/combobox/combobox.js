// lightning-combobox, for the preview: the real one needs attachInternals, which synthetic
// shadow does not support (it throws, and the tab holding it then fails to re-render). A
// labelled native select with SLDS's classes, firing `change` with `detail.value` the same way.
import { LightningElement, api } from 'lwc';

let counter = 0;

export default class Combobox extends LightningElement {
    @api label;
    @api value;
    @api options = [];

    id = `preview-combobox-${++counter}`;

    get items() {
        return (this.options || []).map((option) => ({
            ...option,
            selected: option.value === (this.value ?? '')
        }));
    }

    /** Nothing picked yet: the real combobox shows a placeholder, not the first option. */
    get unpicked() {
        return !this.items.some((option) => option.selected);
    }

    handleChange(event) {
        this.value = event.target.value;
        this.dispatchEvent(new CustomEvent('change', { detail: { value: this.value } }));
    }
}
