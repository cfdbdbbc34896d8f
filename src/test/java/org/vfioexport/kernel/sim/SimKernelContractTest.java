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
    @Disabled("sim disagrees with Linux 7.2: open_flags O_WRONLY|O_CLOEXEC gives a write-only dma-buf fd on 7.2 "
            + "(F_GETFL access mode 1); the sim's fd is O_RDWR (2)")
    @Override
    protected void openFlagsSetTheAccessMode() throws Exception {
        super.openFlagsSetTheAccessMode();
    }

    @Test
    @Disabled("sim disagrees with Linux 7.2: open_flags without O_CLOEXEC (O_RDONLY, O_RDWR) give an fd without "
            + "FD_CLOEXEC on 7.2; the sim's fd is always close-on-exec")
    @Override
    protected void openFlagsSetCloseOnExec() throws Exception {
        super.openFlagsSetCloseOnExec();
    }
}
