package org.vfioexport.kernel.sim;

import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;
import org.vfioexport.kernel.VfioKernel;
import org.vfioexport.kernel.contract.KernelContract;

/**
 * The contract against the simulated kernel, configured with the VM lab's devices and the semantics of the
 * kernel the lab runs (7.2, the 7.1 generation): the same corpus the real kernel passes in the VM.
 *
 * <p>Where the simulator still answers differently from Linux 7.2, the test is overridden here as disabled with
 * both answers in the reason; remove the override once the simulator is fixed.
 */
class SimKernelContractTest extends KernelContract {
    @Override
    protected VfioKernel createKernel() throws Exception {
        return SimKernel.fromConfigFile(labDevicesFile(), SimSemantics.V7_1);
    }

    @Test
    @Disabled("sim disagrees with Linux 7.2: after close with memory off and reopen, 7.2 reports PCI_COMMAND.MEMORY on "
            + "(close restores the state saved at open); the sim keeps it off (memoryAtClose)")
    @Override
    protected void memoryDecodingIsOnAgainAfterCloseAndReopen() throws Exception {
        super.memoryDecodingIsOnAgainAfterCloseAndReopen();
    }

    @Test
    @Disabled("sim disagrees with Linux 7.2: a size-0 ROM is kind ROM in the sim, ABSENT from LinuxKernel; "
            + "for region 8 (VGA) 7.2 answers EINVAL on a device without VGA (LinuxKernel maps it to ABSENT), "
            + "the sim answers size 0 kind VGA")
    @Override
    protected void romAndVgaRegionsAreAbsent() throws Exception {
        super.romAndVgaRegionsAreAbsent();
    }
}
